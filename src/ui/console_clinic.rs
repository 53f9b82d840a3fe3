//! The console's clinic store commands: `clinic` (the store's state, as the
//! connection bar shows it) and `sealed-pack` (the operator confirms that the
//! cartridge in the pen came from a sealed pack, while the store cannot check it).

use super::console::Printer;
use crate::station::Station;

/// The lines `help` prints for these commands.
pub(super) const HELP: &[&str] = &[
    "clinic                          the clinic store: connection, outbox, last upload",
    "sealed-pack                     confirm the cartridge came from a sealed pack (store unreachable)",
];

/// Runs `line` if it is a clinic command; `None` when it is not one.
pub(super) fn execute(station: &mut Station, words: &[&str], out: &mut Printer) -> Option<()> {
    match words {
        ["clinic"] => {
            out.line(&clinic_line(station));
            Some(())
        }
        ["sealed-pack"] => {
            match station.confirm_sealed_pack() {
                Ok(id) => out.line(&format!(
                    "ok: cartridge {id} confirmed from a sealed pack (recorded)"
                )),
                Err(e) => out.line(&format!("refused: {e}")),
            }
            Some(())
        }
        _ => None,
    }
}

/// `clinic: state=connected outbox_lines=0 outbox_bytes=0 last_upload=... store=...`:
/// one line for scripts.
pub(super) fn clinic_line(station: &Station) -> String {
    let Some(status) = station.clinic_status() else {
        return "clinic: state=none (this station works alone on its data folder)".into();
    };
    let (state, reason) = state_words(&status.state);
    format!(
        "clinic: state={state} outbox_lines={} outbox_bytes={} last_upload={} station={} \
         store={} strict={} history={}{}{}",
        status.outbox.lines,
        status.outbox.bytes,
        status
            .last_upload
            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
        status.station_id,
        status.store,
        station.clinic_strict(),
        if station.history_incomplete() {
            "incomplete"
        } else {
            "complete"
        },
        if status.blocked.is_empty() {
            String::new()
        } else {
            format!(" blocked={}", status.blocked.join(","))
        },
        reason.map_or_else(String::new, |r| format!(" reason={r}")),
    )
}

/// The state's word, and its reason when it has one.
pub(super) fn state_words(state: &crate::clinic::StoreState) -> (&'static str, Option<&str>) {
    use crate::clinic::StoreState as S;
    match state {
        S::Connecting => ("connecting", None),
        S::Connected => ("connected", None),
        S::Unreachable(why) => ("unreachable", Some(why)),
        S::Incompatible(why) => ("incompatible", Some(why)),
    }
}
