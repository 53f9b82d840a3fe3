//! Opening files the operator names: only regular files, at once.
//!
//! A record, a screening answers file or a zone table named on the command line or
//! in a dialog may turn out to be a FIFO (which blocks `open` until a writer comes),
//! a device (`/dev/zero` reads forever), a directory or a link to one of these.
//! [`open_regular`] opens without blocking and refuses anything that is not a
//! regular file, naming what it is, before a byte is read.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::Path;

/// Opens `path` read-only if it is a regular file (after following links).
///
/// # Errors
/// The operating system's error (missing, no permission), or
/// [`io::ErrorKind::InvalidInput`] "not a regular file (a FIFO)" and the like.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Without O_NONBLOCK, opening a FIFO waits for a writer, possibly forever.
        // On a regular file the flag changes nothing.
        options.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", describe(kind)),
        ))
    }
}

/// Reads a small text file (a screening answers file, a zone table) whole: a
/// regular file of at most `max_bytes`, in UTF-8.
///
/// # Errors
/// As [`open_regular`]; [`io::ErrorKind::InvalidData`] for a file over
/// `max_bytes` ("2.0 MiB, over the 1 MiB this file may be") or not UTF-8.
pub fn read_text(path: &Path, max_bytes: u64) -> io::Result<String> {
    let file = open_regular(path)?;
    let mut text = String::new();
    // One byte more than allowed tells a file at the limit from one past it.
    let read = file.take(max_bytes + 1).read_to_string(&mut text)?;
    if read as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the file is larger than the {} this file may be",
                size_text(max_bytes)
            ),
        ));
    }
    Ok(text)
}

/// The largest screening answers file or zone table read: far above any real one.
pub const MAX_TEXT_FILE_BYTES: u64 = 1 << 20;

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn describe(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Creates the folder `dir` owner-only (mode 0700) if it is missing; an existing
/// folder is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700);
        builder.create(dir)?;
        // The umask may have taken bits off; set the mode outright.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Creates the file `path`, which must not exist (`AlreadyExists` otherwise),
/// owner-only (mode 0600), for writing.
pub fn create_private_new(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &Path) -> String {
        match open_regular(path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn only_regular_files_open_and_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        // No writer ever opens it: a blocking open would hang this test.
        assert_eq!(refusal(&fifo), "not a regular file (a FIFO)");
        assert_eq!(
            refusal(Path::new("/dev/zero")),
            "not a regular file (a character device)"
        );
        let link = dir.path().join("zero.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        assert_eq!(refusal(&link), "not a regular file (a character device)");
        assert_eq!(refusal(dir.path()), "not a regular file (a directory)");
        let file = dir.path().join("ok.json");
        std::fs::write(&file, "{}").expect("write");
        assert_eq!(read_text(&file, 2).expect("small"), "{}");
        assert_eq!(
            read_text(&file, 1).expect_err("too big").to_string(),
            "the file is larger than the 1 bytes this file may be"
        );
    }
}
