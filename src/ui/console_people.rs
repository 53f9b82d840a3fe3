//! The console's people commands: the first admin, sign-in, the lock, the record's
//! signature, and the admin's accounts, zone limits and settings
//! (`docs/console.md`). Words may be quoted as in a shell (a password with spaces).
//! The station decides every one of them; this only parses and prints.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::safety::interlock::mm;
use crate::safety::zones::ZoneId;
use crate::station::Station;
use crate::station::admin::SettingChange;
use crate::station::people::{LockReason, SignInOutcome};
use crate::store::accounts::{NewAccount, Role, roles_text};

use super::console::Printer;

/// The help lines of these commands.
pub const HELP: &[&str] = &[
    "first-admin <id> <pin> <name...>   the first start only: create the clinic's first admin",
    "sign-in <id> <pin>         sign in, unlock (same account), or take over (another practitioner)",
    "lock | sign-out            lock the station (not while the needle runs) | sign out",
    "whoami                     who is signed in, roles, locked or not, time to the idle lock",
    "sign <pin>                 sign the closed session's record (its practitioner, PIN again)",
    "accounts                   every account (admin)",
    "account add <id> <roles> <pin> <name...>   roles: practitioner,technician,admin (admin)",
    "account disable <id> <reason...> | account roles <id> <roles> | account reset <id> <pin>   (admin)",
    "limit <zone> <mm> <reason...>   a zone's protocol limit, never above its ceiling (admin)",
    "setting <key> <value...>   idle_lock_min numbing_min_contact_min numbing_max_contact_min test_spot_wait_min clinic_name (admin)",
];

/// The commands that work before anyone signs in (with `help`, `status`, `stop`,
/// `estop` and `quit`).
pub const OPEN_WORDS: &[&str] = &["first-admin", "sign-in", "whoami"];

/// Runs `line` if it is a people command (`None`: it is not).
pub(super) fn execute(station: &mut Station, line: &str, out: &mut Printer) -> Option<()> {
    let first = line.split_whitespace().next()?;
    if !matches!(
        first,
        "first-admin"
            | "sign-in"
            | "lock"
            | "sign-out"
            | "whoami"
            | "sign"
            | "accounts"
            | "account"
            | "limit"
            | "setting"
    ) {
        return None;
    }
    let Some(words) = shlex::split(line) else {
        out.line("error: unbalanced quotes (try help)");
        return Some(());
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let said = |r: Result<String, String>, out: &mut Printer| match r {
        Ok(text) => out.line(&format!("ok: {text}")),
        Err(why) => out.line(&format!("refused: {why}")),
    };
    match words.as_slice() {
        ["first-admin", id, pin, name @ ..] if !name.is_empty() => {
            first_admin(station, id, pin, &name.join(" "), out);
        }
        ["sign-in", id, pin] => said(
            station
                .sign_in(id, pin)
                .map(|outcome| {
                    let roles = station
                        .signed_in()
                        .map(|s| roles_text(s.roles()))
                        .unwrap_or_default();
                    match outcome {
                        SignInOutcome::SignedIn => format!("signed in as {id} ({roles})"),
                        SignInOutcome::Unlocked => format!("unlocked by {id}"),
                        SignInOutcome::HandedOver { from } => {
                            format!("{from} handed over to {id} ({roles})")
                        }
                    }
                })
                .map_err(|e| e.to_string()),
            out,
        ),
        ["lock"] => said(
            station
                .lock(LockReason::Demand)
                .map(|()| {
                    "station locked: sign-in <id> <pin> to unlock; stop and estop still work".into()
                })
                .map_err(|e| e.to_string()),
            out,
        ),
        ["sign-out"] => said(
            station
                .sign_out()
                .map(|()| "signed out".into())
                .map_err(|e| e.to_string()),
            out,
        ),
        ["whoami"] => match station.signed_in() {
            None => out.line("status: nobody is signed in"),
            Some(who) => {
                let state = if station.is_locked() {
                    "LOCKED".to_owned()
                } else {
                    let left = station.idle_left().unwrap_or_default().as_secs();
                    format!("unlocked, idle lock in {}:{:02}", left / 60, left % 60)
                };
                out.line(&format!(
                    "status: {} ({}) roles={} {state}",
                    who.id(),
                    who.name(),
                    roles_text(who.roles())
                ));
            }
        },
        ["sign", pin] => said(
            station
                .sign_record(pin)
                .map(|s| {
                    format!(
                        "record signed by {} (SHA-256 {}, {} bytes)",
                        s.account, s.sha256, s.bytes
                    )
                })
                .map_err(|e| e.to_string()),
            out,
        ),
        _ => admin(station, &words, out),
    }
    Some(())
}

/// `first-admin`: the first start's admin, and the old technician PIN's account.
fn first_admin(station: &mut Station, id: &str, pin: &str, name: &str, out: &mut Printer) {
    let new = NewAccount {
        id: id.to_owned(),
        name: name.to_owned(),
        roles: BTreeSet::from([Role::Admin]),
        secret: pin.to_owned(),
    };
    match station.create_first_admin(&new) {
        Ok(all) => {
            let mut text = format!("ok: first admin {id} created; sign in with sign-in {id} <pin>");
            for migrated in all.iter().skip(1) {
                let _ = write!(
                    text,
                    "; the technician PIN is now the account {} ({})",
                    migrated.id,
                    roles_text(&migrated.roles)
                );
            }
            out.line(&text);
        }
        Err(e) => out.line(&format!("refused: {e}")),
    }
}

/// The admin's commands: accounts, zone limits, settings.
fn admin(station: &mut Station, words: &[&str], out: &mut Printer) {
    let said = |r: Result<String, String>, out: &mut Printer| match r {
        Ok(text) => out.line(&format!("ok: {text}")),
        Err(why) => out.line(&format!("refused: {why}")),
    };
    match words {
        ["accounts"] => match station.require(Some(Role::Admin)) {
            Err(e) => out.line(&format!("refused: {e}")),
            Ok(_) => match station.accounts().list() {
                Err(e) => out.line(&format!("error: {e}")),
                Ok(list) => {
                    for a in list {
                        out.line(&format!(
                            "account: {} name={:?} roles={}{}",
                            a.id,
                            a.name,
                            roles_text(&a.roles),
                            if a.disabled { " DISABLED" } else { "" }
                        ));
                    }
                    out.line("ok");
                }
            },
        },
        ["account", "add", id, roles, pin, name @ ..] if !name.is_empty() => {
            let result = Role::parse_list(roles)
                .map_err(|e| e.to_string())
                .and_then(|roles| {
                    let new = NewAccount {
                        id: (*id).to_owned(),
                        name: name.join(" "),
                        roles,
                        secret: (*pin).to_owned(),
                    };
                    station.create_account(&new).map_err(|e| e.to_string())
                })
                .map(|a| format!("account {} created ({})", a.id, roles_text(&a.roles)));
            said(result, out);
        }
        ["account", "disable", id, reason @ ..] if !reason.is_empty() => said(
            station
                .disable_account(id, &reason.join(" "))
                .map(|()| format!("account {id} disabled (kept: records name it)"))
                .map_err(|e| e.to_string()),
            out,
        ),
        ["account", "roles", id, roles] => {
            let result: Result<BTreeSet<Role>, String> = Role::parse_list(roles).map_err(|e| e.to_string());
            said(
                result.and_then(|roles| {
                    station
                        .set_account_roles(id, &roles)
                        .map(|()| format!("{id}: roles {}", roles_text(&roles)))
                        .map_err(|e| e.to_string())
                }),
                out,
            );
        }
        ["account", "reset", id, pin] => said(
            station
                .reset_secret(id, pin)
                .map(|()| format!("{id}: new PIN set"))
                .map_err(|e| e.to_string()),
            out,
        ),
        ["account", ..] => out.line(
            "error: usage: account add <id> <roles> <pin> <name...> | account disable <id> <reason...> | account roles <id> <roles> | account reset <id> <pin>",
        ),
        ["limit", zone, depth, reason @ ..] if !reason.is_empty() => {
            let parsed = zone
                .parse::<ZoneId>()
                .map_err(|e| e.to_string())
                .and_then(|zone| super::console_steps::parse_mm(depth).map(|um| (zone, um)));
            said(
                parsed.and_then(|(zone, um)| {
                    station
                        .set_zone_limit(zone, um, &reason.join(" "))
                        .map(|()| format!("{zone} limit now {}", mm(i64::from(um))))
                        .map_err(|e| e.to_string())
                }),
                out,
            );
        }
        ["limit", ..] => out.line("error: usage: limit <zone> <mm> <reason...>"),
        ["setting", key, value @ ..] if !value.is_empty() => said(
            SettingChange::parse(key, &value.join(" ")).and_then(|change| {
                station
                    .change_setting(&change)
                    .map(|()| format!("{key} = {}", value.join(" ")))
                    .map_err(|e| e.to_string())
            }),
            out,
        ),
        ["setting", ..] => out.line("error: usage: setting <key> <value...>"),
        _ => out.line("error: usage: see help"),
    }
}
