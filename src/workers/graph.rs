//! [`extract_graph`]: the named entities of a document's text and how often they appear
//! together, by plain capitalization rules.
//!
//! A named entity is a maximal run of capitalized words ("Ada Lovelace", "Analytical
//! Engine"), which may hold the connectors "of", "de", "van", "von" and "the" between two
//! capitalized words ("Bank of England"). Punctuation ends a run, and so does a possessive
//! "'s", which is dropped ("Babbage's Engine" names "Babbage"). Because every sentence
//! starts with a capital, a run at the start of a sentence loses its leading common words
//! ("In London" names "London"), and a single capitalized word there counts only if the
//! text also capitalizes it mid-sentence. A common word on its own ("The", "It", "When")
//! is never an entity. Two entities are related when they appear in one sentence.
//!
//! **Invariant:** the output depends on the text only, in a fixed order: entities by
//! mentions (most first) then name, relations by weight (most first) then source and
//! target.
//! **Invariant:** at most [`MAX_ENTITIES`] entities and [`MAX_RELATIONS`] relations; every
//! relation joins two distinct listed entities, `source < target`.
//! **Invariant:** any text extracts in bounded time and memory ([`ExtractionLimits`]): a
//! sentence is read in pieces of at most `max_sentence_chars`, only its first
//! `max_names_per_sentence` distinct names are paired, at most `max_pairs` distinct pairs and
//! names are counted, and reading stops at the `budget` (the graph then says `truncated`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde::Serialize;

use crate::config::ExtractionLimits;

/// The most entities a graph keeps: the most mentioned ones.
pub const MAX_ENTITIES: usize = 50;

/// The most relations a graph keeps: the heaviest ones among the kept entities.
pub const MAX_RELATIONS: usize = 100;

/// The entities of one document and their co-occurrences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    /// The named entities, most mentioned first.
    pub entities: Vec<GraphEntity>,
    /// Pairs of entities named in one sentence, most frequent first.
    pub relations: Vec<GraphRelation>,
    /// The time budget ran out before the end of the text: the graph is of the text before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A named entity of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphEntity {
    /// The name as written, words joined by single spaces ("Bank of England").
    pub name: String,
    /// How many times the document names it.
    pub mentions: u32,
}

/// Two entities named in the same sentences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphRelation {
    /// The entity whose name sorts first.
    pub source: String,
    /// The entity whose name sorts second.
    pub target: String,
    /// How many sentences name both.
    pub weight: u32,
}

/// Pairs counted between two looks at the clock: a few microseconds of work.
const DEADLINE_CHECK_STEPS: u32 = 1024;

/// Lowercase words allowed inside a name, between two capitalized words.
const CONNECTORS: &[&str] = &["of", "de", "van", "von", "the"];

/// Capitalized words that are never an entity on their own, and that a run starting a
/// sentence loses: articles, pronouns, conjunctions, prepositions, common sentence
/// openers and titles. Separated by spaces, compared ignoring ASCII case.
const STOP_WORDS: &str = "\
    A About Above Across After Afterwards Again Against Albeit All Also Although Among \
    An And Another Any Are As At Because Before Behind Below Besides Between Both But By \
    Can Could Despite Did Do Does Dr During Each Either Even Every Finally First For \
    From Furthermore Had Has Have He Her Here Hers His How However I If In Indeed \
    Instead Into Is It Its Jr Just Last Later Let Many May Me Meanwhile Might Miss More \
    Moreover Most Mr Mrs Ms Mt Much Must My Neither Never Next No Nor Not Now Of Often On \
    Once One Only Or Other Our Over Perhaps Prof Since She Should So Some Soon Sr St Still \
    Such That The Their Them Then There Therefore These They This Those Though Through \
    Thus To Today Tomorrow Under Unless Until Upon Us We Were What Whatever When \
    Whenever Where Whereas Whether Which While Who Whom Whose Why With Within Without \
    Would Yes Yesterday Yet You Your";

/// Abbreviations whose period does not end a sentence ("Dr. Ada Lovelace").
const TITLES: &[&str] = &["Dr", "Mr", "Mrs", "Ms", "Prof", "St", "Sr", "Jr", "Mt"];

/// Extracts the named entities of `text` and the relations between those named together,
/// within `limits`.
///
/// Empty text, or text without names, gives an empty graph.
pub fn extract_graph(text: &str, limits: &ExtractionLimits) -> Graph {
    let deadline = Instant::now() + limits.budget;
    let mut truncated = false;
    let mut tokenized: Vec<Vec<Token<'_>>> = Vec::new();
    for piece in sentences(text).flat_map(|sentence| pieces(sentence, limits.max_sentence_chars)) {
        if Instant::now() > deadline {
            truncated = true;
            break;
        }
        tokenized.push(tokens(piece));
    }
    let sentences = tokenized;

    // A sentence-initial word is a name only if the text capitalizes it elsewhere too.
    let capitalized_mid_sentence: BTreeSet<&str> = sentences
        .iter()
        .flat_map(|tokens| {
            tokens.iter().filter_map(|token| match token {
                Token::Word(word) if word.index > 0 && word.capitalized => Some(word.text),
                _ => None,
            })
        })
        .collect();

    // Names are interned: a pair is two indices, so counting one costs no allocation.
    let mut index_of: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut mentions: Vec<u32> = Vec::new();
    let mut pairs: HashMap<(u32, u32), u32> = HashMap::new();
    let mut steps: u32 = 0;
    'sentences: for tokens in &sentences {
        let mut named_here = BTreeSet::new();
        for run in runs(tokens) {
            let Some(name) = entity_name(&run, &capitalized_mid_sentence) else {
                continue;
            };
            let index = match index_of.get(&name) {
                Some(&index) => index,
                None if names.len() < limits.max_pairs => {
                    let index = u32::try_from(names.len()).unwrap_or(u32::MAX);
                    index_of.insert(name.clone(), index);
                    names.push(name);
                    mentions.push(0);
                    index
                }
                None => continue,
            };
            mentions[index as usize] += 1;
            if named_here.len() < limits.max_names_per_sentence {
                named_here.insert(index);
            }
        }
        for (position, &first) in named_here.iter().enumerate() {
            for &second in named_here.iter().skip(position + 1) {
                steps = steps.wrapping_add(1);
                if steps.is_multiple_of(DEADLINE_CHECK_STEPS) && Instant::now() > deadline {
                    truncated = true;
                    break 'sentences;
                }
                let pair_count = pairs.len();
                match pairs.entry((first, second)) {
                    Entry::Occupied(mut weight) => *weight.get_mut() += 1,
                    Entry::Vacant(slot) if pair_count < limits.max_pairs => {
                        slot.insert(1);
                    }
                    Entry::Vacant(_) => {}
                }
            }
        }
        if Instant::now() > deadline {
            truncated = true;
            break;
        }
    }

    let mut entities: Vec<GraphEntity> = names
        .iter()
        .zip(&mentions)
        .map(|(name, &mentions)| GraphEntity {
            name: name.clone(),
            mentions,
        })
        .collect();
    entities.sort_by(|a, b| {
        b.mentions
            .cmp(&a.mentions)
            .then_with(|| a.name.cmp(&b.name))
    });
    entities.truncate(MAX_ENTITIES);

    let kept: BTreeSet<&str> = entities.iter().map(|entity| entity.name.as_str()).collect();
    let mut relations: Vec<GraphRelation> = pairs
        .into_iter()
        .filter_map(|((first, second), weight)| {
            let (first, second) = (&names[first as usize], &names[second as usize]);
            if !kept.contains(first.as_str()) || !kept.contains(second.as_str()) {
                return None;
            }
            let (source, target) = if first < second {
                (first, second)
            } else {
                (second, first)
            };
            Some(GraphRelation {
                source: source.clone(),
                target: target.clone(),
                weight,
            })
        })
        .collect();
    relations.sort_by(|a, b| {
        b.weight
            .cmp(&a.weight)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.target.cmp(&b.target))
    });
    relations.truncate(MAX_RELATIONS);

    Graph {
        entities,
        relations,
        truncated,
    }
}

/// `sentence` in pieces of at most `max_chars` characters, each cut after the last
/// whitespace that fits (or at the limit when a piece has none), so no sentence is read whole
/// past the limit.
fn pieces(sentence: &str, max_chars: usize) -> impl Iterator<Item = &str> {
    let max_chars = max_chars.max(1);
    let mut rest = sentence;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some((limit, _)) = rest.char_indices().nth(max_chars) else {
            return Some(std::mem::take(&mut rest));
        };
        let cut = rest[..limit]
            .rfind(char::is_whitespace)
            .filter(|&at| at > 0)
            .unwrap_or(limit);
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// The sentences of `text`: a sentence ends after `.`, `!` or `?` followed by whitespace
/// (unless the period ends a title such as "Dr."), and at a blank line.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut previous: Option<(usize, char)> = None;
    let mut newline_seen = false;
    for (index, character) in text.char_indices() {
        let blank_line = character == '\n' && newline_seen;
        let after_terminator = character.is_whitespace()
            && match previous {
                Some((end, '.')) => !ends_with_title(&text[start..end]),
                Some((_, '!' | '?')) => true,
                _ => false,
            };
        if blank_line || after_terminator {
            sentences.push(&text[start..index]);
            start = index;
        }
        if character == '\n' {
            newline_seen = true;
        } else if !character.is_whitespace() {
            newline_seen = false;
        }
        previous = Some((index, character));
    }
    sentences.push(&text[start..]);
    sentences
        .into_iter()
        .filter(|sentence| !sentence.trim().is_empty())
}

/// Whether `text` ends with a title abbreviation such as "Dr" (its period just after).
fn ends_with_title(text: &str) -> bool {
    let last_word = text
        .rsplit(|character: char| !character.is_alphanumeric())
        .next()
        .unwrap_or_default();
    TITLES.contains(&last_word)
}

/// A word, or a punctuation mark that ends a run of capitalized words.
#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    Word(Word<'a>),
    Break,
}

#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    /// The word without any possessive "'s".
    text: &'a str,
    /// Its position among the sentence's words; 0 is the sentence's first word.
    index: usize,
    capitalized: bool,
    /// The word ended in "'s", which ends a name.
    possessive: bool,
}

/// The words and run-breaking punctuation of one sentence.
///
/// A word is a run of letters and digits, which may hold an apostrophe or hyphen between
/// two of them ("O'Brien", "Jean-Luc").
fn tokens(sentence: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut word_count = 0;
    let mut characters = sentence.char_indices().peekable();
    while let Some((start, character)) = characters.next() {
        if character.is_whitespace() {
            continue;
        }
        if !character.is_alphanumeric() {
            tokens.push(Token::Break);
            continue;
        }
        let mut end = start + character.len_utf8();
        while let Some(&(index, next)) = characters.peek() {
            let joins_word = matches!(next, '\'' | '\u{2019}' | '-')
                && sentence[index + next.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric);
            if next.is_alphanumeric() || joins_word {
                end = index + next.len_utf8();
                characters.next();
            } else {
                break;
            }
        }
        let word = &sentence[start..end];
        let base = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("\u{2019}s"))
            .filter(|base| !base.is_empty());
        tokens.push(Token::Word(Word {
            text: base.unwrap_or(word),
            index: word_count,
            capitalized: character.is_uppercase(),
            possessive: base.is_some(),
        }));
        word_count += 1;
    }
    tokens
}

/// The maximal runs of capitalized words of a sentence, with the connectors between them.
fn runs<'a>(tokens: &[Token<'a>]) -> Vec<Vec<Word<'a>>> {
    let mut runs = Vec::new();
    let mut current: Vec<Word<'a>> = Vec::new();
    let mut connectors: Vec<Word<'a>> = Vec::new();
    for token in tokens {
        match token {
            Token::Word(word) if word.capitalized => {
                current.append(&mut connectors);
                current.push(*word);
                if word.possessive {
                    runs.push(std::mem::take(&mut current));
                }
            }
            Token::Word(word) if !current.is_empty() && CONNECTORS.contains(&word.text) => {
                connectors.push(*word);
            }
            Token::Word(_) | Token::Break => {
                connectors.clear();
                if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// The entity a run names, if any, after the sentence-start rules.
fn entity_name(run: &[Word<'_>], capitalized_mid_sentence: &BTreeSet<&str>) -> Option<String> {
    let mut words = run;
    if words.first().is_some_and(|word| word.index == 0) {
        // Grammar, not naming, capitalized these: "In London", "The Analytical Engine".
        while let Some((first, rest)) = words.split_first() {
            if is_stop_word(first.text) || !first.capitalized {
                words = rest;
            } else {
                break;
            }
        }
    }
    match words {
        [] => None,
        [word] if is_stop_word(word.text) => None,
        [word] if word.index == 0 && !capitalized_mid_sentence.contains(word.text) => None,
        _ => Some(
            words
                .iter()
                .map(|word| word.text)
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS
        .split_ascii_whitespace()
        .any(|stop_word| stop_word.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    /// The default limits, as an unset environment gives them.
    fn limits() -> ExtractionLimits {
        Config::from_lookup(|_| None)
            .expect("the defaults are valid")
            .workers
            .extraction
    }

    fn extract_graph(text: &str) -> Graph {
        super::extract_graph(text, &limits())
    }

    #[track_caller]
    fn check(text: &str, entities: &[(&str, u32)], relations: &[(&str, &str, u32)]) {
        let graph = extract_graph(text);
        let got_entities: Vec<(&str, u32)> = graph
            .entities
            .iter()
            .map(|entity| (entity.name.as_str(), entity.mentions))
            .collect();
        assert_eq!(got_entities, entities, "entities");
        let got_relations: Vec<(&str, &str, u32)> = graph
            .relations
            .iter()
            .map(|relation| {
                (
                    relation.source.as_str(),
                    relation.target.as_str(),
                    relation.weight,
                )
            })
            .collect();
        assert_eq!(got_relations, relations, "relations");
    }

    #[track_caller]
    fn check_entities(text: &str, entities: &[(&str, u32)]) {
        let graph = extract_graph(text);
        let got: Vec<(&str, u32)> = graph
            .entities
            .iter()
            .map(|entity| (entity.name.as_str(), entity.mentions))
            .collect();
        assert_eq!(got, entities, "{text:?}");
    }

    const LOVELACE: &str = "Ada Lovelace worked with Charles Babbage on the Analytical Engine. \
        In London, Lovelace translated an article by Luigi Menabrea. Her notes on the \
        Analytical Engine include the first published algorithm. Babbage called her \
        \"the Enchantress of Numbers\". Lovelace's notes were republished in 1953.\n\n\
        The Bank of England later put Babbage on a banknote design shortlist; the Bank of \
        England chose Alan Turing instead. Turing read Lovelace's notes.";

    #[test]
    fn a_realistic_paragraph_gives_its_entities_and_relations() {
        check(
            LOVELACE,
            &[
                ("Lovelace", 3),
                ("Analytical Engine", 2),
                ("Babbage", 2),
                ("Bank of England", 2),
                ("Ada Lovelace", 1),
                ("Alan Turing", 1),
                ("Charles Babbage", 1),
                ("Enchantress of Numbers", 1),
                ("London", 1),
                ("Luigi Menabrea", 1),
                ("Turing", 1),
            ],
            &[
                ("Ada Lovelace", "Analytical Engine", 1),
                ("Ada Lovelace", "Charles Babbage", 1),
                ("Alan Turing", "Babbage", 1),
                ("Alan Turing", "Bank of England", 1),
                ("Analytical Engine", "Charles Babbage", 1),
                ("Babbage", "Bank of England", 1),
                ("Babbage", "Enchantress of Numbers", 1),
                ("London", "Lovelace", 1),
                ("London", "Luigi Menabrea", 1),
                ("Lovelace", "Luigi Menabrea", 1),
                ("Lovelace", "Turing", 1),
            ],
        );
    }

    #[test]
    fn runs_of_capitalized_words_are_one_entity() {
        check_entities(
            "We met Ada Lovelace and Grace Brewster Murray Hopper in New York City.",
            &[
                ("Ada Lovelace", 1),
                ("Grace Brewster Murray Hopper", 1),
                ("New York City", 1),
            ],
        );
    }

    #[test]
    fn connectors_join_capitalized_words_only_between_them() {
        check_entities(
            "She studied the Bank of England and the Duke of the Abruzzi with Ludwig van \
             Beethoven, Charles de Gaulle and Alexander von Humboldt.",
            &[
                ("Alexander von Humboldt", 1),
                ("Bank of England", 1),
                ("Charles de Gaulle", 1),
                ("Duke of the Abruzzi", 1),
                ("Ludwig van Beethoven", 1),
            ],
        );
        // A connector with no capitalized word after it is not part of the name.
        check_entities(
            "They praised Paris of the north and visited London of old.",
            &[("London", 1), ("Paris", 1)],
        );
    }

    #[test]
    fn punctuation_ends_a_run() {
        check_entities(
            "We visited London, Paris and Rome; then Berlin (Germany).",
            &[
                ("Berlin", 1),
                ("Germany", 1),
                ("London", 1),
                ("Paris", 1),
                ("Rome", 1),
            ],
        );
    }

    #[test]
    fn a_possessive_is_stripped_and_ends_the_run() {
        check_entities(
            "We read Ada Lovelace's notes on Babbage\u{2019}s Analytical Engine.",
            &[
                ("Ada Lovelace", 1),
                ("Analytical Engine", 1),
                ("Babbage", 1),
            ],
        );
    }

    #[test]
    fn a_sentence_initial_word_counts_only_if_capitalized_elsewhere() {
        // "Babbage" is also capitalized mid-sentence; "Reading" is not.
        check_entities(
            "Babbage designed it. Reading was hard. They thanked Babbage.",
            &[("Babbage", 2)],
        );
        check_entities("Babbage designed it.", &[]);
        // A multi-word run at the start of a sentence needs no second sighting.
        check_entities("Charles Babbage designed it.", &[("Charles Babbage", 1)]);
    }

    #[test]
    fn common_words_starting_a_sentence_are_dropped_from_its_run() {
        check_entities(
            "In London it rained. The Analytical Engine was never built. When Ada \
             arrived, it stopped. In the Bank of England nothing moved.",
            &[
                ("Ada", 1),
                ("Analytical Engine", 1),
                ("Bank of England", 1),
                ("London", 1),
            ],
        );
    }

    #[test]
    fn a_stop_word_is_never_an_entity_on_its_own() {
        check_entities(
            "The end. It was late, and I left. But When? They said This and That.",
            &[],
        );
    }

    #[test]
    fn a_title_period_does_not_end_the_sentence() {
        check(
            "Dr. Grace Hopper met Mr. Aiken at Harvard.",
            &[("Aiken", 1), ("Grace Hopper", 1), ("Harvard", 1)],
            &[
                ("Aiken", "Grace Hopper", 1),
                ("Aiken", "Harvard", 1),
                ("Grace Hopper", "Harvard", 1),
            ],
        );
        check_entities(
            "They prayed at St. Paul's with Mrs. Hopper.",
            &[("Hopper", 1), ("Paul", 1)],
        );
    }

    #[test]
    fn words_with_apostrophes_and_hyphens_stay_whole() {
        check_entities(
            "Later Jean-Luc Picard met Miles O'Brien.",
            &[("Jean-Luc Picard", 1), ("Miles O'Brien", 1)],
        );
    }

    #[test]
    fn relations_count_sentences_naming_both_entities() {
        check(
            "Alice met Bob in Paris. Alice and Bob left Paris! Alice saw Carol? Then Bob \
             called Alice twice: Alice, Alice.",
            &[("Alice", 6), ("Bob", 3), ("Paris", 2), ("Carol", 1)],
            &[
                ("Alice", "Bob", 3),
                ("Alice", "Paris", 2),
                ("Bob", "Paris", 2),
                ("Alice", "Carol", 1),
            ],
        );
    }

    #[test]
    fn a_blank_line_ends_a_sentence() {
        check(
            "Notes from Ada Lovelace\n\nCharles Babbage replied.",
            &[("Ada Lovelace", 1), ("Charles Babbage", 1)],
            &[],
        );
    }

    #[test]
    fn empty_text_gives_an_empty_graph() {
        assert_eq!(extract_graph(""), Graph::default());
        assert_eq!(extract_graph("  \n\n\t "), Graph::default());
    }

    #[test]
    fn text_without_names_gives_an_empty_graph() {
        assert_eq!(
            extract_graph(
                "The results were inconclusive. We will repeat the experiment next week, \
                 with more samples and a longer run. It should work."
            ),
            Graph::default()
        );
    }

    #[test]
    fn entities_and_relations_are_capped_keeping_the_most_frequent() {
        // 60 names; "Name0" is mentioned most, then the others once each, all in one
        // sentence, so there are far more than MAX_RELATIONS pairs.
        let names: Vec<String> = (0..60).map(|number| format!("Name{number:02}")).collect();
        let text = format!("Here {}. Then Name00 again.", names.join(", "));
        let graph = extract_graph(&text);
        assert_eq!(graph.entities.len(), MAX_ENTITIES);
        assert_eq!(
            graph.entities[0],
            GraphEntity {
                name: "Name00".to_owned(),
                mentions: 2,
            }
        );
        assert_eq!(graph.entities[MAX_ENTITIES - 1].name, "Name49");
        assert_eq!(graph.relations.len(), MAX_RELATIONS);
        let kept: BTreeSet<&str> = graph.entities.iter().map(|e| e.name.as_str()).collect();
        for relation in &graph.relations {
            assert!(relation.source < relation.target);
            assert!(kept.contains(relation.source.as_str()));
            assert!(kept.contains(relation.target.as_str()));
        }
    }

    #[test]
    fn the_same_text_always_gives_the_same_graph() {
        let first = extract_graph(LOVELACE);
        for _ in 0..3 {
            assert_eq!(extract_graph(LOVELACE), first);
        }
    }

    #[test]
    fn multibyte_names_are_recognised() {
        check_entities(
            "Élodie Dupré moved to Zürich. Later Élodie liked Zürich.",
            &[("Zürich", 2), ("Élodie", 1), ("Élodie Dupré", 1)],
        );
    }

    #[test]
    fn the_graph_serializes_in_camel_case() {
        let graph = extract_graph("We saw Alice with Bob.");
        let json = serde_json::to_value(&graph).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "entities": [
                    {"name": "Alice", "mentions": 1},
                    {"name": "Bob", "mentions": 1},
                ],
                "relations": [{"source": "Alice", "target": "Bob", "weight": 1}],
            })
        );
    }

    /// `count` distinct capitalized names (`Qaaa`, `Qaab`, ...) in one sentence.
    fn name_list(count: usize) -> String {
        let names: Vec<String> = (0..count)
            .map(|number| {
                let letters: String = [number / 676, number / 26 % 26, number % 26]
                    .iter()
                    .map(|&digit| char::from(b'a' + u8::try_from(digit % 26).expect("< 26")))
                    .collect();
                format!("Q{letters}")
            })
            .collect();
        format!("We met {}.", names.join(", "))
    }

    #[test]
    fn only_the_first_names_of_a_sentence_are_paired() {
        let limits = ExtractionLimits {
            max_names_per_sentence: 4,
            ..limits()
        };
        let graph = super::extract_graph("We saw Ann, Bob, Cid, Dan, Eve and Fay.", &limits);
        assert_eq!(graph.entities.len(), 6, "every name is counted");
        assert_eq!(graph.relations.len(), 6, "4 names make 6 pairs");
        assert!(
            graph
                .relations
                .iter()
                .all(|relation| !["Eve", "Fay"].contains(&relation.target.as_str()))
        );
    }

    #[test]
    fn distinct_names_and_pairs_are_capped() {
        let limits = ExtractionLimits {
            max_pairs: 10,
            ..limits()
        };
        let graph = super::extract_graph(&name_list(100), &limits);
        assert_eq!(graph.entities.len(), 10);
        assert!(graph.relations.len() <= 10);
        assert!(!graph.truncated);
    }

    #[test]
    fn a_long_sentence_is_read_in_pieces() {
        let text = format!("{} and Ann met Bob.", "word ".repeat(100));
        let limits = ExtractionLimits {
            max_sentence_chars: 40,
            ..limits()
        };
        let all: String = pieces(&text, 40).collect();
        assert_eq!(all, text, "the pieces are the whole sentence");
        assert!(pieces(&text, 40).all(|piece| piece.chars().count() <= 40));
        let graph = super::extract_graph(&text, &limits);
        assert_eq!(graph.relations.len(), 1, "Ann and Bob share a piece");
        assert_eq!(pieces("abcdef", 4).collect::<Vec<_>>(), ["abcd", "ef"]);
    }

    #[test]
    fn a_name_bomb_extracts_in_bounded_time_and_says_when_it_stopped() {
        // One sentence of 17,576 distinct names: 154 million pairs without the caps.
        let bomb = name_list(17_576);
        let started = Instant::now();
        let graph = extract_graph(&bomb);
        assert!(
            started.elapsed() < limits().budget,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(graph.entities.len(), MAX_ENTITIES);

        let hurried = ExtractionLimits {
            budget: Duration::from_nanos(1),
            ..limits()
        };
        let graph = super::extract_graph(&bomb.repeat(3), &hurried);
        assert!(graph.truncated, "the budget ran out");
    }
}
