//! The events a replay's timeline marks, and the previous/next event keys jump to:
//! alarms, refusals, pen events, zone changes, link changes, cartridges, notes,
//! procedure steps, and commands the pen refused. Telemetry, commands and plain acknowledgements are not
//! events: they are the plots.

use crate::record::format::Line;
use crate::record::recording::TimedLine;
use crate::safety::alarms::Priority;

/// What kind of event, which sets its colour on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An alarm was raised, with its priority.
    AlarmRaised(Priority),
    /// An alarm was acknowledged, silenced or cleared.
    AlarmChanged,
    /// The interlock refused a command.
    Refusal,
    /// The pen refused a command (`NAK`), or a command went unanswered or unsent.
    CommandFailed,
    /// The pen reported an event (`EV`).
    Pen,
    /// A zone was made active.
    Zone,
    /// The link was lost.
    LinkLost,
    /// The link changed state otherwise (connecting, connected, closed).
    Link,
    /// A cartridge ran for the first time.
    Cartridge,
    /// An operator's note.
    Note,
    /// The needle monitor stopped the needle.
    NeedleStopped,
    /// The station's wall clock stepped (the axis did not).
    Clock,
    /// The alarm sound changed state (working, unavailable).
    Sound,
    /// A step of the procedure (cleansing, numbing, a serum, a correction).
    Step,
}

impl EventKind {
    /// The kind in words, for legends and tooltips.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlarmRaised(Priority::High) => "high alarm",
            Self::AlarmRaised(Priority::Medium) => "medium alarm",
            Self::AlarmRaised(Priority::Low) => "low alarm",
            Self::AlarmChanged => "alarm change",
            Self::Refusal => "refusal",
            Self::CommandFailed => "command failed",
            Self::Pen => "pen event",
            Self::Zone => "zone",
            Self::LinkLost => "link lost",
            Self::Link => "link",
            Self::Cartridge => "cartridge",
            Self::Note => "note",
            Self::NeedleStopped => "needle monitor stop",
            Self::Clock => "clock step",
            Self::Sound => "alarm sound",
            Self::Step => "procedure step",
        }
    }
}

/// One event on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    /// When, session ms (never negative: a line stamped before the header is put at 0).
    pub at_ms: u64,
    /// Its kind.
    pub kind: EventKind,
    /// What happened, one line for a person, control characters escaped
    /// ([`crate::text::shown`]).
    pub text: String,
    /// The line number in the file, from 1.
    pub line_no: u64,
}

/// The priority an alarm line gives, or `None` for a word this version does not know.
#[must_use]
pub fn parse_priority(word: &str) -> Option<Priority> {
    match word {
        "high" => Some(Priority::High),
        "medium" => Some(Priority::Medium),
        "low" => Some(Priority::Low),
        _ => None,
    }
}

/// The event a line makes, if it makes one.
#[must_use]
pub fn event_of(line: &TimedLine) -> Option<TimelineEvent> {
    let (kind, text) = match &line.line {
        Line::Alarm(a) => {
            let kind = if a.action == "raised" {
                EventKind::AlarmRaised(parse_priority(&a.priority).unwrap_or(Priority::High))
            } else {
                EventKind::AlarmChanged
            };
            (kind, format!("alarm {} {}: {}", a.alarm, a.action, a.text))
        }
        Line::Refusal(r) => (
            EventKind::Refusal,
            format!("refused {}: {}", r.command, r.message),
        ),
        Line::Answer(a) if a.result != "ACK" => {
            let detail = a
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            (
                EventKind::CommandFailed,
                format!("{}: {}{detail}", a.command, a.result),
            )
        }
        Line::Event(e) => (EventKind::Pen, format!("pen: {}", e.event)),
        Line::Zone(z) => (EventKind::Zone, format!("zone {}", z.zone)),
        Line::Link(l) if l.state == "lost" => (
            EventKind::LinkLost,
            format!(
                "link lost: {}",
                l.detail.as_deref().unwrap_or("no reason given")
            ),
        ),
        Line::Link(l) => (EventKind::Link, format!("link {}", l.state)),
        Line::Cartridge(c) => (
            EventKind::Cartridge,
            format!("cartridge {} ({} needles)", c.id, c.needles),
        ),
        Line::Note(n) => (EventKind::Note, format!("note by {}: {}", n.author, n.text)),
        Line::Monitor(m) => (
            EventKind::NeedleStopped,
            format!("needle monitor ({}): {}", m.rule, m.message),
        ),
        Line::Clock(c) => (EventKind::Clock, c.describe()),
        Line::Sound(s) => (EventKind::Sound, format!("alarm sound {}", s.detail)),
        Line::Step(s) => (EventKind::Step, s.describe()),
        Line::Access(a) => (
            EventKind::Note,
            match &a.from {
                Some(from) => format!("{}: {from} handed over to {}", a.action, a.account),
                None => format!("{} ({})", a.action, a.account),
            },
        ),
        Line::Clinic(c) => (EventKind::Note, format!("clinic store: {}", c.detail)),
        Line::Header(_)
        | Line::Tel(_)
        | Line::Command(_)
        | Line::Answer(_)
        | Line::Summary(_)
        | Line::Signature(_) => {
            return None;
        }
    };
    Some(TimelineEvent {
        at_ms: u64::try_from(line.session_ms).unwrap_or(0),
        kind,
        // Notes and the pen's strings may hold control characters: one line, shown.
        text: crate::text::shown(&text).into_owned(),
        line_no: line.line_no,
    })
}

/// The events of `lines`, sorted by time; events in the same ms keep the file's
/// order.
#[must_use]
pub fn events_of(lines: &[TimedLine]) -> Vec<TimelineEvent> {
    let mut events: Vec<TimelineEvent> = lines.iter().filter_map(event_of).collect();
    // Stable: events at the same ms keep the file's order.
    events.sort_by_key(|e| e.at_ms);
    events
}
