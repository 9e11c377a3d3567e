//! [`split_into_chunks`]: cuts a document's text into chunks small enough to embed.
//!
//! Paragraphs (separated by blank lines) are the preferred unit: consecutive short ones are
//! packed into one chunk, joined by a blank line. A paragraph longer than the limit is cut
//! into sentences, packed the same way; a sentence longer than the limit is cut at its last
//! whitespace before the limit, or hard at the limit when it has none. A long paragraph's
//! pieces are never packed with its neighbours, so a chunk spans whole paragraphs or lies
//! within one.
//!
//! **Invariant:** every chunk has between 1 and `max_chars` characters (chars, not bytes)
//! and is trimmed; a UTF-8 character is never cut.
//! **Invariant:** the chunks hold the document's words in order: nothing is lost, added or
//! reordered; only whitespace between units changes. Pure and deterministic.

use std::ops::Range;

/// The chunk size used when the caller has no reason to pick another: about a dense
/// paragraph, short enough that one embedding still says what the chunk is about.
pub const DEFAULT_CHUNK_CHARS: usize = 800;

/// Splits `text` into trimmed, non-empty chunks of at most `max_chars` characters.
///
/// Whitespace-only text gives no chunk. A `max_chars` of 0 is treated as 1, the smallest
/// limit a non-empty chunk can keep.
pub fn split_into_chunks(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut chunks = Vec::new();
    let mut packed = Packed::default();
    for paragraph in paragraphs(text) {
        let paragraph_chars = paragraph.chars().count();
        if paragraph_chars <= max_chars {
            if !packed.fits(paragraph_chars, max_chars) {
                packed.flush_into(&mut chunks);
            }
            packed.push(paragraph, paragraph_chars);
        } else {
            packed.flush_into(&mut chunks);
            chunks.extend(split_paragraph(paragraph, max_chars));
        }
    }
    packed.flush_into(&mut chunks);
    chunks
}

/// Short paragraphs waiting to become one chunk.
#[derive(Default)]
struct Packed {
    text: String,
    chars: usize,
}

/// What joins two packed paragraphs.
const PARAGRAPH_SEPARATOR: &str = "\n\n";

impl Packed {
    fn fits(&self, paragraph_chars: usize, max_chars: usize) -> bool {
        self.text.is_empty()
            || self.chars + PARAGRAPH_SEPARATOR.len() + paragraph_chars <= max_chars
    }

    fn push(&mut self, paragraph: &str, paragraph_chars: usize) {
        if !self.text.is_empty() {
            self.text.push_str(PARAGRAPH_SEPARATOR);
            self.chars += PARAGRAPH_SEPARATOR.len();
        }
        self.text.push_str(paragraph);
        self.chars += paragraph_chars;
    }

    fn flush_into(&mut self, chunks: &mut Vec<String>) {
        if !self.text.is_empty() {
            chunks.push(std::mem::take(&mut self.text));
        }
        self.chars = 0;
    }
}

/// The trimmed, non-empty paragraphs of `text`: runs of lines without a blank line.
fn paragraphs(text: &str) -> Vec<&str> {
    let mut paragraphs = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(paragraph_start) = start.take() {
                paragraphs.push(text[paragraph_start..offset].trim());
            }
        } else if start.is_none() {
            start = Some(offset);
        }
        offset += line.len();
    }
    if let Some(paragraph_start) = start {
        paragraphs.push(text[paragraph_start..].trim());
    }
    paragraphs
}

/// Cuts a paragraph longer than the limit into packed sentences (or pieces of sentences).
fn split_paragraph(paragraph: &str, max_chars: usize) -> Vec<String> {
    let units = sentences(paragraph).into_iter().flat_map(|sentence| {
        if paragraph[sentence.clone()].chars().count() <= max_chars {
            vec![sentence]
        } else {
            split_sentence(paragraph, sentence, max_chars)
        }
    });

    // Consecutive units are packed as the paragraph's own text from the first unit's start
    // to the last one's end, so the whitespace between them is the author's.
    let mut chunks = Vec::new();
    let mut current: Option<(Range<usize>, usize)> = None;
    for unit in units {
        let unit_chars = paragraph[unit.clone()].chars().count();
        current = match current {
            Some((range, chars)) => {
                let extended_chars = chars + paragraph[range.end..unit.end].chars().count();
                if extended_chars <= max_chars {
                    Some((range.start..unit.end, extended_chars))
                } else {
                    chunks.push(paragraph[range].to_owned());
                    Some((unit, unit_chars))
                }
            }
            None => Some((unit, unit_chars)),
        };
    }
    if let Some((range, _)) = current {
        chunks.push(paragraph[range].to_owned());
    }
    chunks
}

/// The byte ranges of `paragraph`'s trimmed, non-empty sentences.
///
/// A sentence ends after `.`, `!` or `?` (and any closing quotes or brackets right after
/// it) when whitespace follows.
fn sentences(paragraph: &str) -> Vec<Range<usize>> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut after_terminator = false;
    for (index, character) in paragraph.char_indices() {
        if after_terminator && character.is_whitespace() {
            push_trimmed(paragraph, start..index, &mut sentences);
            start = index;
            after_terminator = false;
        } else if matches!(character, '.' | '!' | '?') {
            after_terminator = true;
        } else if !(after_terminator && is_closing(character)) {
            after_terminator = false;
        }
    }
    push_trimmed(paragraph, start..paragraph.len(), &mut sentences);
    sentences
}

/// Whether `character` may close a sentence after its terminator, as in `"Stop."` or `(sic.)`.
fn is_closing(character: char) -> bool {
    matches!(
        character,
        '"' | '\'' | ')' | ']' | '\u{201D}' | '\u{2019}' | '\u{00BB}'
    )
}

/// Pushes `range` of `text` without its surrounding whitespace, unless nothing is left.
fn push_trimmed(text: &str, range: Range<usize>, ranges: &mut Vec<Range<usize>>) {
    let slice = &text[range.clone()];
    let trimmed_start = slice.trim_start();
    let start = range.start + (slice.len() - trimmed_start.len());
    let end = start + trimmed_start.trim_end().len();
    if start < end {
        ranges.push(start..end);
    }
}

/// Cuts the sentence at `range` of `text` into pieces of at most `max_chars` characters,
/// each ending at the last whitespace before the limit, or at the limit when there is none.
fn split_sentence(text: &str, range: Range<usize>, max_chars: usize) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let rest = &text[start..range.end];
        // The byte offset of the first character past the limit; none means the rest fits.
        let Some((limit, _)) = rest.char_indices().nth(max_chars) else {
            push_trimmed(text, start..range.end, &mut pieces);
            break;
        };
        // Whitespace right at the limit ends a full piece; otherwise the last one before it.
        // `rest` starts with a non-whitespace character, so a cut found is never at 0.
        let cut = if rest[limit..].starts_with(char::is_whitespace) {
            Some(limit)
        } else {
            rest[..limit].rfind(char::is_whitespace)
        };
        let end = cut.unwrap_or(limit);
        push_trimmed(text, start..start + end, &mut pieces);
        let next = &text[start + end..range.end];
        start = range.end - next.trim_start().len();
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, max_chars: usize, expected: &[&str]) {
        let chunks = split_into_chunks(text, max_chars);
        assert_eq!(chunks, expected, "max_chars = {max_chars}");
        check_invariants(text, max_chars, &chunks);
    }

    /// The module's invariants, for any text and limit.
    #[track_caller]
    fn check_invariants(text: &str, max_chars: usize, chunks: &[String]) {
        for chunk in chunks {
            let chunk_chars = chunk.chars().count();
            assert!(chunk_chars >= 1, "empty chunk in {chunks:?}");
            assert!(
                chunk_chars <= max_chars.max(1),
                "{chunk_chars} chars > {max_chars}: {chunk:?}"
            );
            assert_eq!(chunk, chunk.trim(), "untrimmed chunk");
        }
        let non_whitespace =
            |text: &str| -> String { text.chars().filter(|c| !c.is_whitespace()).collect() };
        assert_eq!(
            chunks
                .iter()
                .map(|chunk| non_whitespace(chunk))
                .collect::<String>(),
            non_whitespace(text),
            "text lost, added or reordered"
        );
    }

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn whitespace_only_text_gives_no_chunk() {
        check("", 10, &[]);
        check("   ", 10, &[]);
        check("\n\n \t\n\r\n", 10, &[]);
    }

    #[test]
    fn short_text_is_one_trimmed_chunk() {
        check("  Hello world.  ", 800, &["Hello world."]);
        check("\n\nHello\nworld.\n\n", 800, &["Hello\nworld."]);
        check("exactly10!", 10, &["exactly10!"]);
    }

    #[test]
    fn short_paragraphs_are_packed_while_they_fit() {
        let text = "One.\n\nTwo.\n\nThree.\n\nFour.";
        check(text, 800, &["One.\n\nTwo.\n\nThree.\n\nFour."]);
        // "One.\n\nTwo." is 10 chars; adding "\n\nThree." would make 18.
        check(text, 10, &["One.\n\nTwo.", "Three.", "Four."]);
        check(text, 17, &["One.\n\nTwo.", "Three.\n\nFour."]);
        check(text, 18, &["One.\n\nTwo.\n\nThree.", "Four."]);
        check(text, 6, &["One.", "Two.", "Three.", "Four."]);
    }

    #[test]
    fn blank_lines_with_spaces_or_crlf_separate_paragraphs() {
        check("A a.\r\n\r\nB b.", 6, &["A a.", "B b."]);
        check("A a.\n   \t\nB b.", 6, &["A a.", "B b."]);
        check("A a.\n\n\n\n\nB b.", 800, &["A a.\n\nB b."]);
    }

    #[test]
    fn a_single_line_break_keeps_one_paragraph() {
        check(
            "First line\nsecond line.",
            800,
            &["First line\nsecond line."],
        );
    }

    #[test]
    fn a_long_paragraph_is_split_into_packed_sentences() {
        let paragraph = "The cat sat. The dog ran! Did the bird sing? It did.";
        check(
            paragraph,
            26,
            &["The cat sat. The dog ran!", "Did the bird sing? It did."],
        );
        check(
            paragraph,
            18,
            &[
                "The cat sat.",
                "The dog ran!",
                "Did the bird sing?",
                "It did.",
            ],
        );
    }

    #[test]
    fn sentences_keep_the_whitespace_between_them() {
        check(
            "One one.  Two\ntwo.\nThree three.",
            20,
            &["One one.  Two\ntwo.", "Three three."],
        );
    }

    #[test]
    fn a_terminator_without_whitespace_after_it_does_not_end_a_sentence() {
        check(
            "Version 1.5 of example.com is out. Try it.",
            34,
            &["Version 1.5 of example.com is out.", "Try it."],
        );
    }

    #[test]
    fn closing_quotes_and_brackets_stay_with_their_sentence() {
        check(
            "He said \"stop.\" Then (sic.) she left.",
            16,
            &["He said \"stop.\"", "Then (sic.)", "she left."],
        );
    }

    #[test]
    fn a_long_paragraph_is_not_packed_with_its_neighbours() {
        check(
            "Hi.\n\nAlpha beta. Gamma delta.\n\nBye.",
            14,
            &["Hi.", "Alpha beta.", "Gamma delta.", "Bye."],
        );
    }

    #[test]
    fn a_long_sentence_is_split_at_the_last_whitespace_before_the_limit() {
        check("aaa bbb ccc ddd eee", 8, &["aaa bbb", "ccc ddd", "eee"]);
        // Whitespace right after the limit still gives a full piece.
        check("aaaa bbbb cccc", 9, &["aaaa bbbb", "cccc"]);
        // A piece of a long sentence may be packed with the next sentence.
        check("aaa bbb ccc. Dd.", 8, &["aaa bbb", "ccc. Dd."]);
    }

    #[test]
    fn a_word_longer_than_the_limit_is_cut_at_the_limit() {
        check("abcdefghij", 4, &["abcd", "efgh", "ij"]);
        check("ab cdefghijkl", 4, &["ab", "cdef", "ghij", "kl"]);
    }

    #[test]
    fn a_zero_limit_is_treated_as_one() {
        check("ab c", 0, &["a", "b", "c"]);
    }

    #[test]
    fn multibyte_characters_count_as_one_and_are_never_cut() {
        check("café crème", 4, &["café", "crèm", "e"]);
        check("日本語のテキスト", 3, &["日本語", "のテキ", "スト"]);
        check("🦀🦀🦀 🎉🎉", 3, &["🦀🦀🦀", "🎉🎉"]);
        check("Ça va? Très bien.", 6, &["Ça va?", "Très", "bien."]);
        check("é\n\nà", 4, &["é\n\nà"]);
    }

    #[test]
    fn every_limit_keeps_the_invariants_on_mixed_text() {
        let text = "Ada Lovelace wrote the first program. It ran on Babbage's Analytical \
                    Engine, which was never built!\n\nLe café était très bon. 日本語の文章です。\
                    絵文字も🦀🎉。\n\n\n   Supercalifragilisticexpialidocious is long.  \n\
                    Is it? Yes.\r\n\r\nEnd.";
        for max_chars in 0..=120 {
            check_invariants(text, max_chars, &split_into_chunks(text, max_chars));
        }
    }

    #[test]
    fn chunks_hold_the_documents_words_in_order() {
        let paragraph = "The engine computes tables of numbers. Its inventor never finished it! \
                         Would it have worked? Historians think so, given the drawings.";
        let text = [paragraph; 12].join("\n\n");
        for max_chars in [16, 40, 80, 200, DEFAULT_CHUNK_CHARS] {
            let chunks = split_into_chunks(&text, max_chars);
            let chunk_words: Vec<&str> = chunks.iter().flat_map(|chunk| words(chunk)).collect();
            assert_eq!(chunk_words, words(&text), "max_chars = {max_chars}");
            check_invariants(&text, max_chars, &chunks);
        }
    }

    #[test]
    fn a_large_document_fills_chunks_close_to_the_limit() {
        let sentence = "Each sentence here is about fifty characters long. ";
        let text = sentence.repeat(400);
        let chunks = split_into_chunks(&text, DEFAULT_CHUNK_CHARS);
        assert_eq!(chunks.len(), 27);
        for chunk in &chunks[..chunks.len() - 1] {
            assert!(chunk.chars().count() > DEFAULT_CHUNK_CHARS - sentence.len());
        }
        check_invariants(&text, DEFAULT_CHUNK_CHARS, &chunks);
    }

    #[test]
    fn the_same_text_always_gives_the_same_chunks() {
        let text = "A b c. D e f!\n\nG h i? J k l.";
        assert_eq!(split_into_chunks(text, 7), split_into_chunks(text, 7));
    }
}
