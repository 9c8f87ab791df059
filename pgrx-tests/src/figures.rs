//! Figures for the reliability report (`scripts/report.sh`).

/// Adds `value` to the figure `name` in the file `MIGRATIONS_TEST_FIGURES` names, if any, for
/// `scripts/report.sh`. One line per call; appends of one short line are atomic across tests.
pub fn figure(name: &str, value: u64) {
    use std::io::Write;
    if let Ok(path) = std::env::var("MIGRATIONS_TEST_FIGURES") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the figures file");
        writeln!(file, "{name}\t{value}").expect("write a figure");
    }
}
