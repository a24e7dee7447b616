//! How a query meets a text, the same way on both sides: the analyzer the index uses splits
//! and folds the query and the record's fields alike, and a query word matches a word of the
//! text when it is that word, begins it, or is within a small edit distance of it (one typo
//! from five letters, two from nine). The index finds candidates this way; this module
//! re-checks them on the fields a role may see and marks where they matched.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};

/// The name the index registers [`analyzer`] under.
pub const ANALYZER: &str = "kontor";
/// Query words beyond this many are ignored.
pub const MAX_WORDS: usize = 8;

/// Words split at anything not a letter or digit, lowercased, accents folded (Müller, muller);
/// `ё` is read as `е` before that (see [`fold`]).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Russian writes `е` for `ё` as often as not; both sides are read with `е`. Keeps every
/// character's byte length, so offsets into the folded text are offsets into the original.
pub fn fold(text: &str) -> String {
    text.replace('ё', "е").replace('Ё', "Е")
}

/// A word of a text and where it is (byte offsets into the text).
pub struct Token {
    pub text: String,
    pub from: usize,
    pub to: usize,
}

pub fn tokens(text: &str) -> Vec<Token> {
    let mut a = analyzer();
    let folded = fold(text);
    let mut stream = a.token_stream(&folded);
    let mut out = Vec::new();
    while let Some(t) = stream.next() {
        out.push(Token {
            text: t.text.clone(),
            from: t.offset_from,
            to: t.offset_to,
        });
    }
    out
}

/// Edits allowed between a query word of `len` characters and a word it matches.
pub fn typo_distance(len: usize) -> u8 {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Query words shorter than this match only whole words, not the beginnings of words.
pub const MIN_PREFIX: usize = 2;

/// Whether a query word matches a word of a text (both as the analyzer left them).
pub fn word_matches(query: &str, word: &str) -> bool {
    if word.starts_with(query) && (query.chars().count() >= MIN_PREFIX || word == query) {
        return true;
    }
    let d = typo_distance(query.chars().count());
    d > 0 && edit_distance(query, word, d) <= d
}

/// Edit distance with adjacent transpositions counted as one edit (what the index's fuzzy
/// matching counts), or `bound + 1` as soon as it is known to exceed `bound`.
fn edit_distance(a: &str, b: &str, bound: u8) -> u8 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let bound = usize::from(bound);
    if a.len().abs_diff(b.len()) > bound {
        return (bound + 1) as u8;
    }
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > bound {
            return (bound + 1) as u8;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(bound + 1) as u8
}

/// A query as the index and the matcher read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Its words (at most [`MAX_WORDS`]), as the analyzer leaves them.
    pub words: Vec<String>,
    /// Identifier keys it stands for (see [`crate::document::exact_keys_of_query`]).
    pub exact: Vec<String>,
}

impl Query {
    pub fn parse(q: &str) -> Query {
        let mut words: Vec<String> = Vec::new();
        for t in tokens(q) {
            if !words.contains(&t.text) && words.len() < MAX_WORDS {
                words.push(t.text);
            }
        }
        Query {
            words,
            exact: crate::document::exact_keys_of_query(q),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.exact.is_empty()
    }

    /// Whether these field texts and identifier keys match: every word somewhere, or one of
    /// the identifiers exactly.
    pub fn matches(&self, texts: &[(&str, String)], keys: &[String]) -> bool {
        if self.exact.iter().any(|k| keys.contains(k)) {
            return true;
        }
        if self.words.is_empty() {
            return false;
        }
        let words: Vec<Vec<Token>> = texts.iter().map(|(_, t)| tokens(t)).collect();
        self.words
            .iter()
            .all(|q| words.iter().flatten().any(|w| word_matches(q, &w.text)))
    }

    /// The first field (in the order given) where the query matched, with the matched words'
    /// character ranges.
    pub fn highlight(
        &self,
        texts: &[(&str, String)],
        keys_by_field: &[(&str, Vec<String>)],
    ) -> Option<Highlight> {
        for (field, text) in texts {
            let ranges: Vec<(usize, usize)> = tokens(text)
                .into_iter()
                .filter(|t| self.words.iter().any(|q| word_matches(q, &t.text)))
                .map(|t| (char_index(text, t.from), char_index(text, t.to)))
                .collect();
            let exact = keys_by_field
                .iter()
                .any(|(f, keys)| f == field && self.exact.iter().any(|k| keys.contains(k)));
            if !ranges.is_empty() || exact {
                let ranges = if ranges.is_empty() {
                    vec![(0, text.chars().count())]
                } else {
                    ranges
                };
                return Some(Highlight {
                    field: field.to_string(),
                    text: text.clone(),
                    ranges,
                });
            }
        }
        None
    }
}

fn char_index(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |s| s.chars().count())
}

/// Where a result matched: a field's text and the character ranges `[from, to)` to mark.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Highlight {
    pub field: String,
    pub text: String,
    pub ranges: Vec<(usize, usize)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_whole_by_prefix_and_with_typos() {
        assert!(word_matches("ivan", "ivan"));
        assert!(word_matches("iva", "ivanov"));
        assert!(!word_matches("i", "ivanov"));
        assert!(
            word_matches("petrvo", "petrov"),
            "a transposition is one typo"
        );
        assert!(word_matches("smirnow", "smirnov"));
        assert!(!word_matches("ivan", "ivna"), "four letters allow no typo");
        assert!(word_matches("konstantinopel", "konstantinopol"));
        assert!(!word_matches("petrov", "sidorov"));
    }

    #[test]
    fn the_analyzer_folds_case_accents_and_yo() {
        let words: Vec<String> = tokens("Пётр MÜLLER, ivan.petrov@example.ru")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(words, ["петр", "muller", "ivan", "petrov", "example", "ru"]);
    }

    #[test]
    fn highlights_name_the_field_and_character_ranges() {
        let q = Query::parse("петр");
        let texts = vec![
            ("last_name", "Сидоров".to_string()),
            ("first_name", "Пётр Ильич".to_string()),
        ];
        assert!(q.matches(&texts, &[]));
        let h = q.highlight(&texts, &[]).unwrap();
        assert_eq!(h.field, "first_name");
        assert_eq!(h.ranges, vec![(0, 4)]);
    }
}
