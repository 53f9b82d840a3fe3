//! Port discovery: lists serial ports and marks the pens.
//!
//! Without libudev (no system `-dev` package may be needed to build), `serialport`
//! scans `/sys/class/tty` and reads each USB device's `product` string from sysfs.
//! A port whose product string contains `Microneedling Pen` is a pen (section 1).

/// The text a pen's USB product string contains.
pub const PEN_PRODUCT_MARK: &str = "Microneedling Pen";

/// One serial port found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEntry {
    /// The path to open, e.g. `/dev/ttyACM0`.
    pub path: String,
    /// The USB product string, when the port is a USB device.
    pub product: Option<String>,
    /// The product string says this is a microneedling pen.
    pub is_pen: bool,
}

/// True when a USB product string names a microneedling pen.
#[must_use]
pub fn is_pen_product(product: &str) -> bool {
    product.contains(PEN_PRODUCT_MARK)
}

/// Builds entries from (path, product) pairs: pens first, then by path.
#[must_use]
pub fn mark_and_sort(ports: impl IntoIterator<Item = (String, Option<String>)>) -> Vec<PortEntry> {
    let mut entries: Vec<PortEntry> = ports
        .into_iter()
        .map(|(path, product)| PortEntry {
            is_pen: product.as_deref().is_some_and(is_pen_product),
            path,
            product,
        })
        .collect();
    entries.sort_by(|a, b| b.is_pen.cmp(&a.is_pen).then_with(|| a.path.cmp(&b.path)));
    entries
}

/// Lists the serial ports on this machine, pens first.
pub fn list_ports() -> Result<Vec<PortEntry>, serialport::Error> {
    // serialport's sysfs scan panics when /sys/class/tty is missing (some
    // containers): answer "no ports" there instead.
    if !std::path::Path::new("/sys/class/tty").is_dir() {
        return Ok(Vec::new());
    }
    let ports = serialport::available_ports()?;
    Ok(mark_and_sort(ports.into_iter().map(|p| {
        let product = match p.port_type {
            serialport::SerialPortType::UsbPort(usb) => usb.product,
            _ => None,
        };
        (p.port_name, product)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pens_are_marked_and_listed_first() {
        let entries = mark_and_sort([
            ("/dev/ttyS0".to_owned(), None),
            ("/dev/ttyACM1".to_owned(), Some("Arduino Uno".to_owned())),
            (
                "/dev/ttyACM3".to_owned(),
                Some("Punctum Microneedling Pen v1".to_owned()),
            ),
            (
                "/dev/ttyACM2".to_owned(),
                Some("Microneedling Pen".to_owned()),
            ),
        ]);
        let order: Vec<(&str, bool)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.is_pen))
            .collect();
        assert_eq!(
            order,
            [
                ("/dev/ttyACM2", true),
                ("/dev/ttyACM3", true),
                ("/dev/ttyACM1", false),
                ("/dev/ttyS0", false)
            ]
        );
    }

    #[test]
    fn the_mark_is_case_sensitive_as_the_maker_writes_it() {
        assert!(!is_pen_product("microneedling pen"));
        assert!(is_pen_product("XYZ Microneedling Pen"));
    }

    #[test]
    fn listing_this_machines_ports_does_not_fail() {
        let listed = list_ports();
        assert!(listed.is_ok(), "{listed:?}");
    }

    #[test]
    fn the_udev_rule_matches_the_pens_the_station_marks_and_gives_the_seat_access() {
        let rule = include_str!("../../assets/udev/70-punctum-pen.rules");
        let active: Vec<&str> = rule
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            active,
            vec![format!(
                "SUBSYSTEM==\"tty\", ATTRS{{product}}==\"*{PEN_PRODUCT_MARK}*\", TAG+=\"uaccess\""
            )]
        );
    }
}
