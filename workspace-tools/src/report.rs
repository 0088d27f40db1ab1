//! Composing a command's or process's answer: status lines, the output streams (labelled when
//! there is more than plain stdout), and notes, fitted together into the output budget.

use crate::trim::{share_budget, trim_middle};

/// One output stream, already cleaned for the model.
pub(crate) struct Stream {
    pub(crate) label: &'static str,
    pub(crate) text: String,
}

/// An answer being put together.
#[derive(Default)]
pub(crate) struct Report {
    /// Status lines first (`exit code: 1`).
    pub(crate) header: Vec<String>,
    pub(crate) streams: Vec<Stream>,
    /// Notes last (`next: …`).
    pub(crate) footer: Vec<String>,
    /// What to say when every stream is empty.
    pub(crate) empty_note: &'static str,
}

/// The finished text, and whether the budget forced a cut.
pub(crate) struct Rendered {
    pub(crate) text: String,
    pub(crate) trimmed: bool,
}

impl Report {
    /// Fit everything into `budget` bytes. Status lines and notes are kept whole; the streams
    /// share what is left (see [`share_budget`]) and are each cut in the middle if they must be.
    pub(crate) fn render(self, budget: usize) -> Rendered {
        let streams: Vec<Stream> = self
            .streams
            .into_iter()
            .filter(|s| !s.text.is_empty())
            .collect();
        // Plain stdout needs no label; anything else does, so the model can tell them apart.
        let labelled = !(streams.len() == 1 && streams[0].label == "stdout");

        let line_cost = |lines: &[String]| lines.iter().map(|l| l.len() + 1).sum::<usize>();
        let mut fixed = line_cost(&self.header) + line_cost(&self.footer);
        for s in &streams {
            // The label line, and a newline closing a body that lacks one.
            fixed += (if labelled { s.label.len() + 2 } else { 0 }) + 1;
        }
        if streams.is_empty() {
            fixed += self.empty_note.len() + 1;
        }
        let lengths: Vec<usize> = streams.iter().map(|s| s.text.len()).collect();
        let shares = share_budget(&lengths, budget.saturating_sub(fixed));

        let mut trimmed = false;
        let mut out = String::new();
        for line in &self.header {
            out.push_str(line);
            out.push('\n');
        }
        if streams.is_empty() {
            out.push_str(self.empty_note);
            out.push('\n');
        }
        for (s, share) in streams.iter().zip(shares) {
            if labelled {
                out.push_str(s.label);
                out.push_str(":\n");
            }
            let (body, cut) = trim_middle(&s.text, share);
            trimmed |= cut.is_some();
            out.push_str(&body);
            if !body.ends_with('\n') {
                out.push('\n');
            }
        }
        for line in &self.footer {
            out.push_str(line);
            out.push('\n');
        }
        while out.ends_with('\n') {
            out.pop();
        }
        if out.len() > budget {
            // Only reachable when the status lines and notes alone overflow a tiny budget.
            let (text, _) = trim_middle(&out, budget);
            return Rendered {
                text,
                trimmed: true,
            };
        }
        Rendered { text: out, trimmed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stdout: &str, stderr: &str) -> Report {
        Report {
            header: vec!["exit code: 1".into()],
            streams: vec![
                Stream {
                    label: "stdout",
                    text: stdout.into(),
                },
                Stream {
                    label: "stderr",
                    text: stderr.into(),
                },
            ],
            footer: vec![],
            empty_note: "(no output)",
        }
    }

    #[test]
    fn labels_only_when_needed() {
        assert_eq!(report("hi\n", "").render(1024).text, "exit code: 1\nhi");
        assert_eq!(
            report("", "bad").render(1024).text,
            "exit code: 1\nstderr:\nbad"
        );
        assert_eq!(
            report("a", "b\n").render(1024).text,
            "exit code: 1\nstdout:\na\nstderr:\nb"
        );
        assert_eq!(
            report("", "").render(1024).text,
            "exit code: 1\n(no output)"
        );
    }

    #[test]
    fn streams_share_the_budget() {
        let big = "x\n".repeat(50_000);
        let r = report(&big, "short error\n").render(2048);
        assert!(r.trimmed);
        assert!(r.text.len() <= 2048, "{}", r.text.len());
        assert!(r.text.ends_with("stderr:\nshort error"));
        assert!(r.text.contains("cut from the middle"));
    }
}
