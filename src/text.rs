//! How values are written into messages.

/// "1 migration", "2 migrations": `noun` takes an "s" unless `n` is 1.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A value as an error message quotes it: the first 64 characters of a longer one, then "...",
/// so that a megabyte sent by mistake does not come back in the message.
pub fn shortened(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

/// `"a", "b"`: each item double-quoted; after the first 20, how many more there are, so that
/// a message about ten thousand migrations stays readable.
pub fn quoted_list(items: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut list = items
        .iter()
        .take(SHOWN)
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        list.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    list
}
