//! Property tests of the codec: every message round-trips through encode and decode;
//! random bytes never panic and never yield a frame whose CRC did not match.

use proptest::prelude::*;
use punctum::protocol::{
    BootReason, CalUpdate, Calibration, CartridgeId, Command, Decoded, EstopSource, FaultCode,
    FrameDecoder, NakReason, PenEvent, PenInfo, PenMessage, PenState, Seq, Telemetry, crc16,
    parse_command,
};

fn seq() -> impl Strategy<Value = Seq> {
    (1u16..=u16::MAX).prop_map(|v| Seq::new(v).expect("nonzero"))
}

/// A word as INFO and CAL carry them: printable, no space, `*` or `=`.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.\\-]{1,16}"
}

fn state() -> impl Strategy<Value = PenState> {
    prop_oneof![
        Just(PenState::Idle),
        Just(PenState::Running),
        Just(PenState::Fault),
        Just(PenState::Estop)
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let cal_update = (
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(token()),
    )
        .prop_map(|(o, g, s, date, tech)| CalUpdate {
            depth_offset_um: o,
            depth_gain_ppm: g,
            speed_gain_ppm: s,
            date,
            tech,
        })
        .prop_filter("CAL SET names at least one key", |u| !u.is_empty());
    prop_oneof![
        any::<i32>().prop_map(|p| Command::Hello { proto: p.into() }),
        Just(Command::Info),
        any::<i32>().prop_map(|d| Command::Depth { depth_um: d.into() }),
        any::<i32>().prop_map(|r| Command::Speed { rpm: r.into() }),
        Just(Command::Run),
        Just(Command::Halt),
        Just(Command::Hb),
        any::<i32>().prop_map(|hz| Command::Tel { hz: hz.into() }),
        Just(Command::Reset),
        Just(Command::CalGet),
        cal_update.prop_map(Command::CalSet),
        Just(Command::SimGauge),
    ]
}

fn event() -> impl Strategy<Value = PenEvent> {
    prop_oneof![
        (
            any::<u32>(),
            prop_oneof![
                Just(BootReason::Power),
                Just(BootReason::WatchdogReset),
                Just(BootReason::Brownout)
            ]
        )
            .prop_map(|(boot, reason)| PenEvent::Boot { boot, reason }),
        prop_oneof![Just(EstopSource::Host), Just(EstopSource::Button)].prop_map(PenEvent::Estop),
        proptest::sample::select(FaultCode::ALL.to_vec()).prop_map(PenEvent::Fault),
        (any::<u64>(), any::<u32>()).prop_map(|(id, needles)| PenEvent::Cartridge {
            id: CartridgeId(id),
            needles
        }),
        Just(PenEvent::CartridgeRemoved),
        Just(PenEvent::Button),
        Just(PenEvent::HaltButton),
    ]
}

fn pen_message() -> impl Strategy<Value = PenMessage> {
    let info = (
        (token(), token(), token(), any::<i32>(), any::<u32>()),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |((model, serial, fw, proto, boot), (dmax, dstep, smin, smax), (wd, tel))| PenInfo {
                model,
                serial,
                fw,
                proto: proto.into(),
                boot,
                depth_max_um: dmax,
                depth_step_um: dstep,
                speed_min_rpm: smin,
                speed_max_rpm: smax,
                watchdog_ms: wd,
                tel_max_hz: tel,
            },
        );
    let cal = (
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<u32>(),
        token(),
    )
        .prop_map(|(o, g, s, date, tech)| Calibration {
            depth_offset_um: o,
            depth_gain_ppm: g,
            speed_gain_ppm: s,
            date,
            tech,
        });
    let telemetry = (
        any::<u32>(),
        any::<u32>(),
        state(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
    )
        .prop_map(
            |(n, t_ms, state, rpm, depth_um, current_ma, temp_dc)| Telemetry {
                n,
                t_ms,
                state,
                rpm,
                depth_um,
                current_ma,
                temp_dc,
            },
        );
    prop_oneof![
        seq().prop_map(PenMessage::Ack),
        (seq(), proptest::sample::select(NakReason::ALL.to_vec()))
            .prop_map(|(s, r)| PenMessage::Nak(s, r)),
        // Sixteen-character words and ten-digit numbers in every key can pass the
        // 250-byte body (section 2): such an INFO is refused, never framed.
        info.prop_map(PenMessage::Info)
            .prop_filter("INFO fits one frame", |m| {
                m.encode_into(&mut String::new(), &mut Vec::new()).is_ok()
            }),
        cal.prop_map(PenMessage::Cal),
        telemetry.prop_map(PenMessage::Telemetry),
        (any::<u32>(), event()).prop_map(|(t_ms, event)| PenMessage::Event { t_ms, event }),
        any::<i32>().prop_map(|true_um| PenMessage::Gauge { true_um }),
    ]
}

fn decode_bodies(bytes: &[u8], decoder: &mut FrameDecoder) -> Vec<String> {
    let mut bodies = Vec::new();
    decoder.feed(bytes, |d| {
        if let Decoded::Frame(body) = d {
            bodies.push(body.to_owned());
        }
    });
    bodies
}

proptest! {
    #[test]
    fn every_command_round_trips(seq in seq(), cmd in command()) {
        let line = cmd.encode(seq).expect("generated commands are framable");
        let bodies = decode_bodies(&line, &mut FrameDecoder::watching_estop());
        prop_assert_eq!(bodies.len(), 1);
        prop_assert_eq!(parse_command(&bodies[0]), Ok((seq, cmd)));
    }

    #[test]
    fn every_pen_message_round_trips(msg in pen_message()) {
        let (mut scratch, mut line) = (String::new(), Vec::new());
        msg.encode_into(&mut scratch, &mut line).expect("generated messages are framable");
        let bodies = decode_bodies(&line, &mut FrameDecoder::new());
        prop_assert_eq!(bodies.len(), 1);
        prop_assert_eq!(PenMessage::parse(&bodies[0]), Ok(msg));
    }

    #[test]
    fn messages_survive_any_split_and_surrounding_garbage(
        msgs in proptest::collection::vec(pen_message(), 1..20),
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
        split in any::<prop::sample::Index>(),
    ) {
        let mut wire = garbage.clone();
        // Garbage ends at a newline: the decoder resynchronises there.
        wire.push(b'\n');
        let mut scratch = String::new();
        for m in &msgs {
            m.encode_into(&mut scratch, &mut wire).expect("framable");
        }
        let cut = split.index(wire.len() + 1);
        let mut decoder = FrameDecoder::new();
        let mut bodies = decode_bodies(&wire[..cut], &mut decoder);
        bodies.extend(decode_bodies(&wire[cut..], &mut decoder));
        let parsed: Vec<PenMessage> = bodies.iter().filter_map(|b| PenMessage::parse(b).ok()).collect();
        // Garbage may itself hold a valid frame by chance; the messages are the tail.
        prop_assert!(parsed.len() >= msgs.len());
        prop_assert_eq!(&parsed[parsed.len() - msgs.len()..], &msgs[..]);
    }

    #[test]
    fn random_bytes_never_panic_nor_yield_a_frame_with_a_bad_crc(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        estop in any::<bool>(),
    ) {
        let mut decoder = if estop { FrameDecoder::watching_estop() } else { FrameDecoder::new() };
        let mut frames = Vec::new();
        decoder.feed(&bytes, |d| if let Decoded::Frame(body) = d { frames.push(body.to_owned()) });
        for body in frames {
            // Every frame handed out was followed on the wire by its correct CRC.
            let framed = format!("{body}*{:04X}", crc16(body.as_bytes()));
            prop_assert!(bytes.windows(framed.len()).any(|w| w == framed.as_bytes()));
            let _ = PenMessage::parse(&body);
            let _ = parse_command(&body);
        }
    }

    #[test]
    fn a_flipped_bit_is_never_taken_for_a_frame(
        msg in pen_message(),
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut scratch, mut line) = (String::new(), Vec::new());
        msg.encode_into(&mut scratch, &mut line).expect("framable");
        let body_and_crc = line.len() - 1; // not the newline
        let i = bit.index(body_and_crc * 8);
        line[i / 8] ^= 1 << (i % 8);
        let bodies = decode_bodies(&line, &mut FrameDecoder::new());
        // CRC-16 detects every single-bit error.
        prop_assert!(bodies.is_empty(), "{:?}", bodies);
    }
}
