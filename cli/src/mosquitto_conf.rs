//! Reading a mosquitto.conf the way Mosquitto does, for `devicegate
//! doctor`: `key value` lines, `#` comments, `include_dir DIR` pulling in
//! `DIR/*.conf` in name order, listeners starting a new block.

use std::path::{Path, PathBuf};

/// One `key value` line, with where it came from.
#[derive(Debug, Clone)]
pub struct Line {
    /// The key (`plugin`, `listener`, `plugin_opt_database_url`, …).
    pub key: String,
    /// The rest of the line, trimmed.
    pub value: String,
    /// `FILE:LINE`, for messages.
    pub at: String,
}

/// Every line of `path` and the files it includes, in Mosquitto's order.
pub fn read(path: &Path) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    read_into(path, &mut lines, 0)?;
    Ok(lines)
}

fn read_into(path: &Path, lines: &mut Vec<Line>, depth: u32) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("{}: include_dir nested too deep", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let at = format!("{}:{}", path.display(), number + 1);
        if key == "include_dir" {
            let dir = PathBuf::from(value.trim());
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| format!("{at}: include_dir {}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            files.sort();
            for file in files {
                read_into(&file, lines, depth + 1)?;
            }
            continue;
        }
        lines.push(Line {
            key: key.to_owned(),
            value: value.trim().to_owned(),
            at,
        });
    }
    Ok(())
}

/// The value of the last line with `key` (Mosquitto: the last one wins).
pub fn last<'a>(lines: &'a [Line], key: &str) -> Option<&'a Line> {
    lines.iter().rev().find(|l| l.key == key)
}

/// The lines of each `listener` block (the lines after it up to the next).
pub fn listeners(lines: &[Line]) -> Vec<(&Line, Vec<&Line>)> {
    let mut blocks: Vec<(&Line, Vec<&Line>)> = Vec::new();
    for line in lines {
        if line.key == "listener" {
            blocks.push((line, Vec::new()));
        } else if let Some((_, block)) = blocks.last_mut() {
            block.push(line);
        }
    }
    blocks
}
