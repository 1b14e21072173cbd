//! Printing: aligned tables for people, JSON for scripts, errors on stderr.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// Where results go.
pub struct Output {
    /// Print JSON instead of tables and sentences.
    pub json: bool,
}

impl Output {
    /// A result: `value` as JSON, or `text` for people.
    pub fn done(&self, value: Value, text: &str) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }

    /// A list: JSON array of `items`, or a table.
    pub fn list<T: Serialize>(&self, items: &[T], headers: &[&str], row: impl Fn(&T) -> Vec<String>) {
        if self.json {
            println!("{}", serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned()));
            return;
        }
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print!("{}", table(headers, &rows));
    }

    /// One object: JSON, or `field: value` lines.
    pub fn show<T: Serialize>(&self, item: &T, fields: &[(&str, String)]) {
        if self.json {
            println!("{}", serde_json::to_string(item).unwrap_or_else(|_| "{}".to_owned()));
            return;
        }
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in fields {
            println!("{key:width$}  {value}");
        }
    }
}

/// Renders rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// An error, on stderr: a sentence, or `{"error": …}` with --json.
pub fn error(json: bool, e: &anyhow::Error) {
    if json {
        eprintln!("{}", serde_json::json!({ "error": format!("{e:#}") }));
    } else {
        eprintln!("error: {e:#}");
    }
}

/// A time in ms since the epoch as RFC 3339 (UTC), or `-`.
pub fn time(ms: Option<i64>) -> String {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string(),
        None => "-".to_owned(),
    }
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1\n");
        assert_eq!(time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(time(None), "-");
    }
}
