//! Fitting text into the model's output budget.
//!
//! Long output is cut in the middle: the start shows what ran, the end holds the error or the
//! summary, and both matter more than the middle. The cut falls on line boundaries where that
//! keeps most of the budget, always on character boundaries, and is replaced by a marker saying
//! exactly how many bytes and lines went, so the model knows what it did not see.

/// Share of the kept bytes given to the head; the rest goes to the tail, where errors and
/// summaries usually are.
const HEAD_SHARE_PERCENT: usize = 30;

/// What [`trim_middle`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Cut {
    /// Bytes removed (UTF-8 bytes of the text it was given).
    pub bytes: usize,
    /// Newline characters among them: the number of whole lines removed when the cut falls on
    /// line boundaries, as it does unless a single line is longer than half the budget.
    pub lines: usize,
}

impl Cut {
    /// The text that replaces the removed middle.
    pub fn marker(&self) -> String {
        format!(
            "[... {} bytes ({} lines) cut from the middle ...]",
            self.bytes, self.lines
        )
    }
}

/// `text` cut to at most `max_bytes` bytes: its head and tail with a [`Cut::marker`] line in
/// between, or unchanged if it fits. The result never splits a UTF-8 character.
///
/// When `max_bytes` is too small to hold even the marker, the result is the marker alone, cut
/// to `max_bytes` (callers keep budgets far above that).
///
/// ```
/// use workspace_tools::trim::trim_middle;
/// let text: String = (1..=1000).map(|i| format!("line {i}\n")).collect();
/// let (short, cut) = trim_middle(&text, 200);
/// let cut = cut.unwrap();
/// assert!(short.len() <= 200);
/// assert!(short.starts_with("line 1\n") && short.ends_with("line 1000\n"));
/// assert!(short.contains(&cut.marker()));
/// // The head ends on a newline, so the marker line adds its own text and one newline.
/// assert_eq!(short.len() - cut.marker().len() - 1 + cut.bytes, text.len());
/// ```
pub fn trim_middle(text: &str, max_bytes: usize) -> (String, Option<Cut>) {
    if text.len() <= max_bytes {
        return (text.to_string(), None);
    }
    // Room for the largest marker this text can need, plus a newline on each side of it.
    let worst = Cut {
        bytes: text.len(),
        lines: text.len(),
    };
    let reserve = worst.marker().len() + 2;
    let Some(keep) = max_bytes.checked_sub(reserve) else {
        let marker = Cut {
            bytes: text.len(),
            lines: text.matches('\n').count(),
        };
        let m = marker.marker();
        return (
            m[..floor_char_boundary(&m, max_bytes)].to_string(),
            Some(marker),
        );
    };
    let head_budget = keep * HEAD_SHARE_PERCENT / 100;
    let tail_budget = keep - head_budget;

    let mut head_end = floor_char_boundary(text, head_budget);
    if let Some(nl) = text[..head_end].rfind('\n')
        && nl + 1 >= head_end / 2
    {
        head_end = nl + 1;
    }
    let mut tail_start = ceil_char_boundary(text, text.len() - tail_budget);
    if let Some(nl) = text[tail_start..].find('\n')
        && nl < (text.len() - tail_start) / 2
    {
        tail_start += nl + 1;
    }
    let removed = &text[head_end..tail_start];
    let cut = Cut {
        bytes: removed.len(),
        lines: removed.matches('\n').count(),
    };
    let head = &text[..head_end];
    let mut out = String::with_capacity(max_bytes);
    out.push_str(head);
    if !head.is_empty() && !head.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&cut.marker());
    out.push('\n');
    out.push_str(&text[tail_start..]);
    (out, Some(cut))
}

/// Split `budget` bytes among texts of the given lengths, fairly: texts that fit their share
/// keep everything, and what they leave is shared among the longer ones.
///
/// ```
/// use workspace_tools::trim::share_budget;
/// assert_eq!(share_budget(&[10, 1000], 100), vec![10, 90]);
/// assert_eq!(share_budget(&[1000, 1000], 100), vec![50, 50]);
/// assert_eq!(share_budget(&[5, 7], 100), vec![5, 7]);
/// ```
pub fn share_budget(lengths: &[usize], budget: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut shares = vec![0; lengths.len()];
    let mut remaining = budget;
    for (done, &i) in order.iter().enumerate() {
        let left = lengths.len() - done;
        let share = (remaining / left).min(lengths[i]);
        shares[i] = share;
        remaining -= share;
    }
    shares
}

/// The largest character boundary of `s` at or below `index`.
pub(crate) fn floor_char_boundary(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest character boundary of `s` at or above `index`.
pub(crate) fn ceil_char_boundary(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(trim_middle("abc", 3), ("abc".to_string(), None));
        assert_eq!(trim_middle("", 0), (String::new(), None));
    }

    #[test]
    fn counts_are_exact_and_budget_holds() {
        let text: String = (0..5000).map(|i| format!("row {i:05}\n")).collect();
        for max in [100, 257, 1000, 4096, 16 * 1024] {
            let (out, cut) = trim_middle(&text, max);
            let cut = cut.expect("cut");
            assert!(out.len() <= max, "{} > {max}", out.len());
            let (head, rest) = out.split_once(&cut.marker()).expect("marker present");
            let tail = rest.strip_prefix('\n').expect("marker on its own line");
            assert!(text.starts_with(head) && text.ends_with(tail));
            assert_eq!(head.len() + cut.bytes + tail.len(), text.len());
            let removed = &text[head.len()..text.len() - tail.len()];
            assert_eq!(removed.matches('\n').count(), cut.lines);
            // Line-aligned: every removed line is whole.
            assert!(removed.ends_with('\n') && head.ends_with('\n'));
        }
    }

    #[test]
    fn never_splits_a_character() {
        let text = "é".repeat(10_000) + "✓".repeat(10_000).as_str();
        for max in [120, 121, 122, 123, 500, 501] {
            let (out, cut) = trim_middle(&text, max);
            assert!(out.len() <= max);
            let cut = cut.expect("cut");
            let (head, tail) = out.split_once(&cut.marker()).expect("marker");
            // No newline in the text: the marker got one inserted before and one after it.
            let head = head.strip_suffix('\n').expect("inserted newline");
            let tail = tail.strip_prefix('\n').expect("marker newline");
            assert!(text.starts_with(head) && text.ends_with(tail));
            assert_eq!(head.len() + cut.bytes + tail.len(), text.len());
        }
    }

    #[test]
    fn tiny_budget_gives_a_marker_only() {
        let (out, cut) = trim_middle(&"x".repeat(100), 10);
        assert!(out.len() <= 10);
        assert_eq!(cut.map(|c| c.bytes), Some(100));
    }

    #[test]
    fn budget_shares_add_up() {
        assert_eq!(share_budget(&[], 10), Vec::<usize>::new());
        assert_eq!(share_budget(&[0, 0], 10), vec![0, 0]);
        assert_eq!(share_budget(&[3, 100, 100], 53), vec![3, 25, 25]);
        let s = share_budget(&[100, 7, 1000], 60);
        assert_eq!(s, vec![26, 7, 27]);
    }
}
