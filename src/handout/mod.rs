//! Printable pages: the aftercare sheet and the session summary the client takes home,
//! and the calibration certificate's page. HTML with print CSS (A4, no screen-only
//! chrome), built with `maud`, whose templates escape every value by construction:
//! no page is built by string concatenation, so a note with `<script>` or quotes
//! prints as text.
//!
//! Pages are written to `<data>/handouts/` (0600 files in a 0700 folder, never
//! overwritten: `-2`, `-3`… are added). Headless Chromium prints them to PDF
//! (`chromium --headless --print-to-pdf`); `scripts/render-pages.sh` turns them into
//! PNG for a look.

pub mod certificate;

use std::path::{Path, PathBuf};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::station::session::SessionSummary;

/// The folder of hand-outs in the data folder.
pub const HANDOUTS_DIR: &str = "handouts";

/// The pages' style: readable on screen, A4 with margins when printed, black on white.
pub const STYLE: &str = "\
@page{size:A4;margin:18mm 16mm}\
body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:46em;margin:2em auto;color:#111;\
font-size:11pt;line-height:1.4}\
header{border-bottom:2px solid #222;margin-bottom:1em;padding-bottom:.4em}\
header .clinic{font-size:1.5em;font-weight:bold}header .what{font-size:1.1em;color:#333}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .3em;\
border-bottom:1px solid #aaa}\
table{border-collapse:collapse;margin:.3em 0 1em;width:100%}\
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eee}td.n,th.n{text-align:right}\
.facts td:first-child{width:12em;font-weight:bold;background:#f6f6f6}\
.next{font-size:1.15em;font-weight:bold;border:2px solid #222;padding:.5em;margin:1em 0}\
.banner{font-size:1.6em;font-weight:bold;padding:.4em;text-align:center;color:#fff}\
.pass{background:#2a7a2a}.fail{background:#b02020}td.bad{color:#b02020;font-weight:bold}\
svg{border:1px solid #999;background:#fff}\
footer{margin-top:2em;font-size:.85em;color:#444;border-top:1px solid #aaa;padding-top:.4em}\
@media print{body{margin:0;max-width:none}a{color:#111;text-decoration:none}\
h2{break-after:avoid}tr{break-inside:avoid}}";

/// A whole page: `title`, the clinic's header, `body`, and a footer.
#[must_use]
pub fn page(title: &str, clinic: Option<&str>, what: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    div.clinic { (clinic.unwrap_or("Punctum")) }
                    div.what { (what) }
                }
                (body)
                footer {
                    "Printed by Punctum " (env!("CARGO_PKG_VERSION"))
                    ". Questions or a reaction that worries you: call the clinic."
                }
            }
        }
    }
}

/// The facts every hand-out opens with: client, date, practitioner, zones treated.
fn facts(summary: &SessionSummary) -> Markup {
    let zones: Vec<&str> = summary
        .zones
        .iter()
        .filter(|z| z.passes > 0 || z.needling_ms > 0)
        .map(|z| z.zone.as_str())
        .collect();
    html! {
        table.facts {
            tr { td { "Client" } td { (summary.client) } }
            tr { td { "Date" } td { (summary.date) } }
            tr { td { "Practitioner" } td { (summary.practitioner) } }
            tr { td { "Treatment" } td { "Microneedling (" (summary.indication.replace('_', " ")) ")" } }
            tr {
                td { "Areas treated" }
                td { @if zones.is_empty() { "none (no needling)" } @else { (zones.join(", ")) } }
            }
        }
    }
}

fn next_session(summary: &SessionSummary) -> Markup {
    html! {
        div.next {
            @match summary.next_latest {
                Some(latest) => { "Next session: between " (summary.next_earliest) " and " (latest) }
                None => { "Next session: from " (summary.next_earliest) }
            }
        }
        p { (summary.next_advice) }
        @if let Some(course) = &summary.course {
            p { "Course of treatment: " (course) }
        }
    }
}

/// The aftercare sheet: the client's pseudonym, the date, the zones treated, the
/// aftercare instructions, the course and the next session's dates.
#[must_use]
pub fn aftercare_page(summary: &SessionSummary, clinic: Option<&str>) -> String {
    let body = html! {
        h1 { "Aftercare after your microneedling session" }
        (facts(summary))
        h2 { "What to expect and what to do" }
        ul {
            @for line in &summary.aftercare {
                li { (line) }
            }
        }
        h2 { "Your next session" }
        (next_session(summary))
    };
    page(
        &format!("Aftercare {} {}", summary.client, summary.date),
        clinic,
        "Aftercare sheet",
        &body,
    )
    .into_string()
}

/// The session summary: the facts, the procedure's steps with their times, the
/// products and lots, the figures per zone, the course and the next session.
#[must_use]
pub fn summary_page(summary: &SessionSummary, clinic: Option<&str>) -> String {
    let body = html! {
        h1 { "Session summary" }
        (facts(summary))
        h2 { "The procedure" }
        @if summary.steps.is_empty() {
            p { "No step was recorded." }
        } @else {
            table {
                tr { th { "Time" } th { "Step" } }
                @for (at, what) in &summary.steps {
                    tr { td { (at) } td { (what) } }
                }
            }
        }
        h2 { "Products and lots" }
        @if summary.lots.is_empty() {
            p { "None recorded." }
        } @else {
            table {
                tr { th { "What" } th { "Product" } th { "Lot" } }
                @for lot in &summary.lots {
                    tr {
                        td { (lot.kind.as_str().replace('_', " ")) }
                        td { (lot.product) }
                        td { (lot.lot) }
                    }
                }
            }
        }
        h2 { "Needling per area" }
        table {
            tr { th { "Area" } th.n { "Passes" } th.n { "Needling time" } th.n { "Deepest" } }
            @for z in &summary.zones {
                tr {
                    td { (z.zone.as_str()) }
                    td.n { (z.passes) }
                    td.n { (format!("{}:{:02} min", z.needling_ms / 60_000, z.needling_ms / 1000 % 60)) }
                    td.n { (crate::safety::interlock::mm(i64::from(z.max_depth_um))) }
                }
            }
        }
        h2 { "Your next session" }
        (next_session(summary))
    };
    page(
        &format!("Session summary {} {}", summary.client, summary.date),
        clinic,
        "Session summary",
        &body,
    )
    .into_string()
}

/// Writes the aftercare sheet and the session summary into `<data>/handouts/`
/// (`<session>_aftercare.html`, `<session>_summary.html`) and returns their paths.
///
/// # Errors
/// The folder or a file cannot be created or written.
pub fn write_handouts(
    data: &crate::store::DataDir,
    summary: &SessionSummary,
    clinic: Option<&str>,
) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = data.path(HANDOUTS_DIR);
    crate::files::create_private_dir(&dir)?;
    let aftercare = write_new(
        &dir,
        &format!("{}_aftercare", summary.session_id),
        &aftercare_page(summary, clinic),
    )?;
    let page = write_new(
        &dir,
        &format!("{}_summary", summary.session_id),
        &summary_page(summary, clinic),
    )?;
    // Client data leaving the station on paper: an export, in the audit trail. The
    // pages are written already; a log that cannot be written is said, not hidden.
    let event = crate::store::audit::AuditEvent::new(
        crate::store::audit::AuditKind::Export,
        Some(&summary.practitioner),
    )
    .with("session", summary.session_id.clone())
    .with("what", "hand-outs")
    .with(
        "files",
        format!("{}; {}", aftercare.display(), page.display()),
    );
    if let Err(e) = crate::store::audit::AuditLog::of(data).append(event) {
        tracing::warn!("the hand-outs are not in the audit log: {e}");
    }
    Ok((aftercare, page))
}

/// Writes `text` to `<dir>/<stem>.html`, or `<stem>-2.html`… if it exists: a page
/// already handed out is never overwritten.
fn write_new(dir: &Path, stem: &str, text: &str) -> std::io::Result<PathBuf> {
    for n in 1..1000 {
        let path = if n == 1 {
            dir.join(format!("{stem}.html"))
        } else {
            dir.join(format!("{stem}-{n}.html"))
        };
        match crate::files::create_private_new(&path) {
            Ok(mut file) => {
                use std::io::Write as _;
                file.write_all(text.as_bytes())?;
                file.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{stem}: a thousand pages of this name already exist"
    )))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
