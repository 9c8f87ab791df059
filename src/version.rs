//! Migration versions and project names: what is valid, and the natural order between versions.

/// A version, project name or migration name that breaks its rule; `error` words the rule.
#[derive(Debug)]
pub enum InvalidLabel {
    Version(String),
    Project(String),
    Name(String),
}

/// Longest accepted version; it also bounds a run of digits, whose length the sort key stores in one byte.
pub const MAX_VERSION_LEN: usize = 255;
/// Longest accepted project name (a PostgreSQL identifier's length).
pub const MAX_PROJECT_LEN: usize = 63;
/// Longest accepted migration name.
pub const MAX_NAME_LEN: usize = 255;

/// Marks a run of digits in a sort key. No other byte of a key starts a token with it, because
/// digits only ever appear inside such runs.
const DIGIT_RUN: u8 = b'0';

fn is_label(text: &str, max_len: usize) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max_len
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn check_version(version: &str) -> Result<(), InvalidLabel> {
    if is_label(version, MAX_VERSION_LEN) {
        Ok(())
    } else {
        Err(InvalidLabel::Version(version.to_owned()))
    }
}

pub fn check_project(project: &str) -> Result<(), InvalidLabel> {
    if is_label(project, MAX_PROJECT_LEN) {
        Ok(())
    } else {
        Err(InvalidLabel::Project(project.to_owned()))
    }
}

pub fn check_name(name: &str) -> Result<(), InvalidLabel> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_LEN {
        Err(InvalidLabel::Name(name.to_owned()))
    } else {
        Ok(())
    }
}

/// A byte string whose plain byte order is the natural order of versions: runs of digits compare
/// as numbers, everything else byte by byte. A run becomes `DIGIT_RUN, length, digits` with its
/// leading zeros dropped, so a shorter number sorts first and `1`, `01` and `001` get one key.
/// Stored beside each migration, it lets PostgreSQL sort with a plain `ORDER BY` and a unique
/// index reject two spellings of the same version.
pub fn sort_key(version: &str) -> Vec<u8> {
    let bytes = version.as_bytes();
    let mut key = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let zeros = bytes[start..i].iter().take_while(|&&b| b == b'0').count();
            let digits = &bytes[start + zeros..i];
            key.push(DIGIT_RUN);
            key.push(digits.len() as u8);
            key.extend_from_slice(digits);
        } else {
            key.push(bytes[i]);
            i += 1;
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut versions: Vec<&str>) -> Vec<&str> {
        versions.sort_by_key(|v| sort_key(v));
        versions
    }

    #[test]
    fn digit_runs_compare_as_numbers() {
        assert_eq!(sorted(vec!["10", "2", "1"]), vec!["1", "2", "10"]);
        assert_eq!(
            sorted(vec!["20260116090000", "20260115120000", "9"]),
            vec!["9", "20260115120000", "20260116090000"]
        );
        assert_eq!(
            sorted(vec!["1.10", "1.9", "1.2.3", "1.2"]),
            vec!["1.2", "1.2.3", "1.9", "1.10"]
        );
        assert_eq!(sorted(vec!["v10", "v9", "V1"]), vec!["V1", "v9", "v10"]);
    }

    #[test]
    fn other_bytes_compare_bytewise_and_digits_sort_as_digit_characters() {
        // '-' (0x2d) and '.' (0x2e) sort below digits, letters above them
        assert_eq!(
            sorted(vec!["1a", "1-a", "1.a", "1"]),
            vec!["1", "1-a", "1.a", "1a"]
        );
        assert_eq!(sorted(vec!["a", "9", "B"]), vec!["9", "B", "a"]);
    }

    #[test]
    fn leading_zeros_give_equal_keys() {
        assert_eq!(sort_key("001"), sort_key("1"));
        assert_eq!(sort_key("v0002.0"), sort_key("v2.000"));
        assert_ne!(sort_key("1"), sort_key("10"));
        assert_eq!(sort_key("0"), sort_key("000"));
    }

    #[test]
    fn label_rules() {
        for good in ["1", "20260101120000", "v1.2.3-rc_1", "A"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["", " 1", "-1", ".1", "1 2", "1;", "é1", "1/2"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        assert!(check_version(&"9".repeat(MAX_VERSION_LEN)).is_ok());
        assert!(check_version(&"9".repeat(MAX_VERSION_LEN + 1)).is_err());
        assert!(check_project(&"p".repeat(MAX_PROJECT_LEN + 1)).is_err());
        assert!(check_name("  ").is_err());
        assert!(check_name("create users").is_ok());
    }
}
