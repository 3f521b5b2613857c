//! Splitting a filter into tokens, each with the column it starts at.

use crate::FilterError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Ident(String),
    Str(String),
    Number(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl TokenKind {
    /// The token in words, for error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Ident(word) => format!("`{word}`"),
            TokenKind::Str(text) => format!("string \"{text}\""),
            TokenKind::Number(number) => format!("number {number}"),
            TokenKind::Op(op) => format!("`{op}`"),
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::Comma => "`,`".into(),
        }
    }

    /// Whether the token is the keyword `word` (in any case).
    pub(crate) fn keyword(&self, word: &str) -> bool {
        matches!(self, TokenKind::Ident(w) if w.eq_ignore_ascii_case(word))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// 1-based character column where the token starts.
    pub column: usize,
}

pub(crate) fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let mut push = |kind, len: usize| {
            tokens.push(Token { kind, column });
            len
        };
        i += match c {
            c if c.is_whitespace() => 1,
            '(' => push(TokenKind::LParen, 1),
            ')' => push(TokenKind::RParen, 1),
            ',' => push(TokenKind::Comma, 1),
            '=' => push(TokenKind::Op("="), 1),
            '!' if chars.get(i + 1) == Some(&'=') => push(TokenKind::Op("!="), 2),
            '<' if chars.get(i + 1) == Some(&'=') => push(TokenKind::Op("<="), 2),
            '>' if chars.get(i + 1) == Some(&'=') => push(TokenKind::Op(">="), 2),
            '<' => push(TokenKind::Op("<"), 1),
            '>' => push(TokenKind::Op(">"), 1),
            '"' | '\'' => {
                let (text, end) = string(&chars, i)?;
                push(TokenKind::Str(text), end + 1 - i)
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.') {
                    j += 1;
                }
                push(TokenKind::Number(chars[i..j].iter().collect()), j - i)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.') {
                    j += 1;
                }
                push(TokenKind::Ident(chars[i..j].iter().collect()), j - i)
            }
            other => return Err(FilterError::at(column, format!("unexpected character `{other}`"))),
        };
    }
    Ok(tokens)
}

/// The string opened by the quote at `start`: its text (backslash escapes
/// the next character) and the position of the closing quote.
fn string(chars: &[char], start: usize) -> Result<(String, usize), FilterError> {
    let quote = chars[start];
    let mut text = String::new();
    let mut j = start + 1;
    loop {
        match chars.get(j) {
            None => {
                return Err(FilterError::at(
                    start + 1,
                    format!("unterminated string (missing closing {quote})"),
                ));
            }
            Some('\\') => {
                let Some(&escaped) = chars.get(j + 1) else {
                    return Err(FilterError::at(j + 1, "dangling backslash".into()));
                };
                text.push(escaped);
                j += 2;
            }
            Some(&q) if q == quote => return Ok((text, j)),
            Some(&other) => {
                text.push(other);
                j += 1;
            }
        }
    }
}
