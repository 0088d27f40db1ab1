//! Turning terminal output into plain text for a model.
//!
//! Commands written for humans colour their output, draw progress bars with carriage returns and
//! set window titles. A model gains nothing from the escape sequences and pays for every byte,
//! so [`clean_terminal_text`] removes them and renders what a terminal would leave on screen
//! line by line.
//!
//! Written here rather than taken from `strip-ansi-escapes`: that crate drives the full `vte`
//! parser over bytes and leaves carriage returns and backspaces in place, while this needs only
//! the ECMA-48 sequence grammar over `&str` plus a per-line cursor, about a hundred lines that
//! the tests below pin down.

/// The escape character that introduces every 7-bit sequence.
const ESC: char = '\u{1b}';
/// BEL: ends an OSC string in xterm's dialect.
const BEL: char = '\u{07}';
/// The 8-bit String Terminator.
const ST_8BIT: char = '\u{9c}';

/// What kind of control string (terminated by ST) we are inside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StringKind {
    /// OSC: also ended by BEL.
    Osc,
    /// DCS, SOS, PM, APC: ended by ST only.
    Other,
}

/// Remove ANSI/ECMA-48 escape sequences and render carriage returns and backspaces.
///
/// Removed: CSI sequences (`ESC [` … final byte, colours, cursor moves, erases), OSC strings
/// (`ESC ]` … BEL or ST: titles, hyperlinks), DCS/SOS/PM/APC strings (… ST), two- and
/// three-byte escapes (`ESC 7`, `ESC ( B`), their 8-bit C1 forms (U+009B CSI and friends), and
/// other invisible control characters. Kept: newlines and tabs.
///
/// Rendered: a lone carriage return moves back to the start of the line, so later text
/// overwrites earlier text as on a terminal (`"50%\r100%"` → `"100%"`, `"abc\rX"` → `"Xbc"`);
/// a backspace moves back one character (`"a\bb"` → `"b"`). `"\r\n"` is a plain newline.
///
/// ```
/// use workspace_tools::ansi::clean_terminal_text;
/// assert_eq!(clean_terminal_text("\u{1b}[1;31merror\u{1b}[0m: bad"), "error: bad");
/// assert_eq!(clean_terminal_text("10%\r55%\r100%\ndone\r\n"), "100%\ndone\n");
/// ```
pub fn clean_terminal_text(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    // The current line as a terminal holds it: characters and a cursor position.
    let mut line: Vec<char> = Vec::new();
    let mut cursor = 0usize;
    let mut text = Cursor {
        text: input,
        pos: 0,
    };

    while let Some(c) = text.bump() {
        match c {
            '\n' => {
                out.extend(line.drain(..));
                out.push('\n');
                cursor = 0;
            }
            '\r' => {
                if text.peek() != Some('\n') {
                    cursor = 0;
                }
            }
            '\u{08}' => cursor = cursor.saturating_sub(1),
            ESC => match text.peek() {
                Some('[') => {
                    text.bump();
                    skip_csi(&mut text);
                }
                Some(']') => {
                    text.bump();
                    skip_string(&mut text, StringKind::Osc);
                }
                Some('P' | 'X' | '^' | '_') => {
                    text.bump();
                    skip_string(&mut text, StringKind::Other);
                }
                // nF: intermediates, then one final byte (`ESC ( B`, `ESC # 8`).
                Some('\u{20}'..='\u{2f}') => {
                    while text.bump_if(|c| ('\u{20}'..='\u{2f}').contains(&c)) {}
                    text.bump_if(|c| ('\u{30}'..='\u{7e}').contains(&c));
                }
                // Fp, Fe, Fs: one final byte (`ESC 7`, `ESC =`, `ESC M`, `ESC c`).
                Some('\u{30}'..='\u{7e}') => {
                    text.bump();
                }
                // A stray ESC (before a control character, or at the end): drop it alone.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut text),
            '\u{9d}' => skip_string(&mut text, StringKind::Osc),
            '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut text, StringKind::Other),
            '\t' => put(&mut line, &mut cursor, '\t'),
            c if c.is_control() => {}
            c => put(&mut line, &mut cursor, c),
        }
    }
    out.extend(line);
    out
}

/// Write `c` at the cursor, overwriting what a carriage return or backspace moved back over.
fn put(line: &mut Vec<char>, cursor: &mut usize, c: char) {
    if *cursor < line.len() {
        line[*cursor] = c;
    } else {
        line.push(c);
    }
    *cursor += 1;
}

/// A position in the input that can look at the next character without taking it.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Take the next character if `accept` says so.
    fn bump_if(&mut self, accept: impl Fn(char) -> bool) -> bool {
        match self.peek() {
            Some(c) if accept(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }
}

/// Skip a CSI sequence after its introducer: parameter and intermediate bytes (0x20–0x3F),
/// then one final byte (0x40–0x7E). A malformed sequence ends at the first other character,
/// which is then handled normally.
fn skip_csi(text: &mut Cursor<'_>) {
    while text.bump_if(|c| ('\u{20}'..='\u{3f}').contains(&c)) {}
    text.bump_if(|c| ('\u{40}'..='\u{7e}').contains(&c));
}

/// Skip a control string up to and including its terminator: ST (`ESC \` or U+009C), or BEL
/// for OSC. An unterminated string runs to the end of the text, as it would on a terminal.
fn skip_string(text: &mut Cursor<'_>, kind: StringKind) {
    while let Some(c) = text.bump() {
        match c {
            ST_8BIT => return,
            BEL if kind == StringKind::Osc => return,
            ESC if text.peek() == Some('\\') => {
                text.bump();
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean_terminal_text as clean;

    #[test]
    fn colours_and_cursor_moves_go() {
        assert_eq!(clean("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(clean("\x1b[38;5;196mx\x1b[38;2;1;2;3my\x1b[m"), "xy");
        assert_eq!(clean("a\x1b[2K\x1b[1Gb"), "ab");
        assert_eq!(clean("\x1b[?25lhidden cursor\x1b[?25h"), "hidden cursor");
        assert_eq!(clean("\u{9b}1mbold"), "bold");
    }

    #[test]
    fn strings_go_with_either_terminator() {
        assert_eq!(clean("\x1b]0;title\x07text"), "text");
        assert_eq!(
            clean("\x1b]8;;https://x.invalid\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
        assert_eq!(clean("\x1bPq#0;2;0;0;0\x1b\\after"), "after");
        assert_eq!(clean("\x1b_apc\u{9c}after"), "after");
        assert_eq!(clean("\u{9d}2;t\x07ok"), "ok");
        // BEL does not end a DCS string.
        assert_eq!(clean("\x1bPa\x07b\x1b\\c"), "c");
        // Unterminated: runs to the end, as on a terminal.
        assert_eq!(clean("keep\x1b]0;never ends"), "keep");
    }

    #[test]
    fn short_escapes_go() {
        assert_eq!(clean("\x1b(Bascii\x1b)0"), "ascii");
        assert_eq!(clean("\x1b7saved\x1b8"), "saved");
        assert_eq!(clean("\x1b#8x"), "x");
        assert_eq!(clean("\x1b=\x1b>k"), "k");
    }

    #[test]
    fn stray_and_malformed_escapes_lose_only_themselves() {
        assert_eq!(clean("a\x1b"), "a");
        assert_eq!(clean("a\x1b\nb"), "a\nb");
        // A CSI broken by a newline ends there; the newline survives.
        assert_eq!(clean("x\x1b[12\ny"), "x\ny");
        assert_eq!(clean("bell\x07 nul\0 del\x7f"), "bell nul del");
    }

    #[test]
    fn carriage_returns_and_backspaces_render() {
        assert_eq!(clean("10%\r55%\r100%\n"), "100%\n");
        assert_eq!(clean("abc\rX"), "Xbc");
        assert_eq!(clean("progress\r"), "progress");
        assert_eq!(clean("one\r\ntwo\r\n"), "one\ntwo\n");
        assert_eq!(clean("a\x08b"), "b");
        assert_eq!(clean("ab\x08\x08\x08c"), "cb");
        assert_eq!(
            clean("\x1b[32m 50%\x1b[0m\r\x1b[32m100%\x1b[0m done"),
            "100% done"
        );
    }

    #[test]
    fn text_and_tabs_stay_untouched() {
        let s = "ünïcødé ✓\tcol\n日本語\n";
        assert_eq!(clean(s), s);
        assert_eq!(clean(""), "");
    }
}
