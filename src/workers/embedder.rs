//! [`Embedder`]: turns a chunk of text into an [`Embedding`]; [`LocalEmbedder`] does it
//! in-process by feature hashing.
//!
//! [`LocalEmbedder`] needs no model file and no network: it hashes the words, word pairs and
//! character trigrams of the text into a fixed number of signed buckets and normalizes the
//! result. Texts that share words and word parts score close; it knows no synonyms.
//!
//! **Invariant:** an embedding depends on the text and the dimensions only: the hash is a
//! hand-written FNV-1a, stable across runs, platforms and Rust versions, so stored vectors
//! stay comparable with new ones.
//! **Invariant:** every embedding [`LocalEmbedder`] returns has unit length.

/// Turns text into an embedding, a vector whose cosine with another says how alike two
/// texts are.
///
/// Implementations must be deterministic: the same text gives the same vector, bit for bit,
/// in every run, or embeddings stored earlier could no longer be compared with new ones.
/// `embed` is synchronous and may be CPU-heavy; the worker calls it inside
/// `spawn_blocking`.
pub trait Embedder: Send + Sync + 'static {
    /// How many components every embedding of this embedder has.
    fn dimensions(&self) -> usize;

    /// Embeds `text` into a unit-length vector of [`Embedder::dimensions`] components.
    ///
    /// # Errors
    ///
    /// [`EmbedError::NoFeatures`] when the text has nothing to embed (no words).
    fn embed(&self, text: &str) -> Result<Embedding, EmbedError>;
}

/// Why a text could not be embedded, or stored embedding bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The text has no words, so there is nothing to embed.
    #[error("text has no words to embed")]
    NoFeatures,
    /// Stored bytes are not a whole number of little-endian `f32`s.
    #[error("embedding bytes are malformed: {len} bytes is not a multiple of 4")]
    Malformed {
        /// How many bytes were given.
        len: usize,
    },
}

/// A text's embedding: a vector of `f32` components, unit length when an [`Embedder`]
/// made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

/// How many bytes one component takes in [`Embedding::to_bytes`].
const COMPONENT_BYTES: usize = size_of::<f32>();

impl Embedding {
    /// The components, in order.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// How many components the embedding has.
    pub fn dimensions(&self) -> usize {
        self.0.len()
    }

    /// The components as little-endian `f32`s, 4 bytes each: the storage form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|component| component.to_le_bytes())
            .collect()
    }

    /// Reads an embedding back from [`Embedding::to_bytes`]'s form.
    ///
    /// # Errors
    ///
    /// [`EmbedError::Malformed`] when the length is not a multiple of 4.
    pub fn from_bytes(bytes: &[u8]) -> Result<Embedding, EmbedError> {
        if !bytes.len().is_multiple_of(COMPONENT_BYTES) {
            return Err(EmbedError::Malformed { len: bytes.len() });
        }
        let components = bytes
            .chunks_exact(COMPONENT_BYTES)
            .map(|component| {
                f32::from_le_bytes(
                    component
                        .try_into()
                        .expect("chunks_exact yields slices of exactly 4 bytes"),
                )
            })
            .collect();
        Ok(Embedding(components))
    }

    /// How alike two embeddings are, from -1 (opposite) through 0 (unrelated) to 1 (same).
    ///
    /// Embeddings are unit length, so this is their dot product. Embeddings of different
    /// dimensions (from different embedders), a zero vector, or components that are not
    /// finite give 0.0.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() || self.is_zero() || other.is_zero() {
            return 0.0;
        }
        let dot: f32 = self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum();
        if dot.is_finite() { dot } else { 0.0 }
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|component| *component == 0.0)
    }
}

impl From<Vec<f32>> for Embedding {
    /// Wraps components as they are; an [`Embedder`] normalizes them first.
    fn from(components: Vec<f32>) -> Self {
        Embedding(components)
    }
}

/// The number of dimensions [`LocalEmbedder::default`] uses: enough buckets that a chunk's
/// few hundred features seldom collide, small enough to store and compare cheaply.
pub const DEFAULT_DIMENSIONS: usize = 256;

/// Weight of a word, the strongest sign of what a text is about.
const UNIGRAM_WEIGHT: f64 = 1.0;
/// Weight of two adjacent words, which carry some word order.
const BIGRAM_WEIGHT: f64 = 0.5;
/// Weight of a character trigram, which lets inflections of one word ("sat", "sitting")
/// and typos share some signal.
const TRIGRAM_WEIGHT: f64 = 0.25;
/// Marks the start and end of a word in its trigrams, so "#ca" (a word starting with "ca")
/// differs from "ca" inside a word.
const WORD_BOUNDARY: char = '#';

/// Tags that keep the feature kinds apart in the hash: the word "the" and the trigram
/// "the" are different features.
const UNIGRAM_TAG: u8 = b'u';
const BIGRAM_TAG: u8 = b'b';
const TRIGRAM_TAG: u8 = b't';

/// A deterministic, in-process embedder by feature hashing (the "hashing trick").
///
/// The text is lowercased and cut into words (runs of Unicode letters and digits). Each
/// word (weight 1), each pair of adjacent words (0.5) and each character trigram of a word
/// padded with `#` (0.25) is hashed with FNV-1a 64; the hash picks a bucket and a sign, the
/// weight is added there, and the vector is L2-normalized.
#[derive(Debug, Clone)]
pub struct LocalEmbedder {
    dimensions: usize,
}

impl LocalEmbedder {
    /// An embedder producing vectors of `dimensions` components (at least 1; 0 is taken
    /// as 1).
    pub fn new(dimensions: usize) -> Self {
        LocalEmbedder {
            dimensions: dimensions.max(1),
        }
    }

    fn add(&self, vector: &mut [f64], hash: u64, weight: f64) {
        // Fold the high half in: FNV-1a's low bits depend only on the input's low bits, and a
        // power-of-two bucket count would otherwise use nothing else.
        let folded = hash ^ (hash >> 32);
        let bucket = (folded % self.dimensions as u64) as usize;
        // The top bit picks the sign, so colliding features cancel as often as they add up
        // and the expected dot product of unrelated texts is 0.
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[bucket] += sign * weight;
    }
}

impl Default for LocalEmbedder {
    /// An embedder of [`DEFAULT_DIMENSIONS`] dimensions.
    fn default() -> Self {
        LocalEmbedder::new(DEFAULT_DIMENSIONS)
    }
}

impl Embedder for LocalEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, text: &str) -> Result<Embedding, EmbedError> {
        let lowercase = text.to_lowercase();
        let words: Vec<&str> = lowercase
            .split(|character: char| !character.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect();
        if words.is_empty() {
            return Err(EmbedError::NoFeatures);
        }

        // The weights are binary fractions, so f64 sums are exact and the vector does not
        // depend on the order features are added in.
        let mut vector = vec![0.0_f64; self.dimensions];
        let mut padded = Vec::new();
        for (word_idx, word) in words.iter().enumerate() {
            self.add(&mut vector, fnv1a(UNIGRAM_TAG, &[word]), UNIGRAM_WEIGHT);
            if let Some(next) = words.get(word_idx + 1) {
                self.add(
                    &mut vector,
                    fnv1a(BIGRAM_TAG, &[word, " ", next]),
                    BIGRAM_WEIGHT,
                );
            }
            padded.clear();
            padded.push(WORD_BOUNDARY);
            padded.extend(word.chars());
            padded.push(WORD_BOUNDARY);
            for trigram in padded.windows(3) {
                let mut buffer = [0_u8; 12];
                let mut len = 0;
                for character in trigram {
                    len += character.encode_utf8(&mut buffer[len..]).len();
                }
                self.add(
                    &mut vector,
                    fnv1a_bytes(TRIGRAM_TAG, &buffer[..len]),
                    TRIGRAM_WEIGHT,
                );
            }
        }

        let norm = vector
            .iter()
            .map(|component| component * component)
            .sum::<f64>()
            .sqrt();
        // Every feature cancelling out in its bucket is possible in theory; a zero vector
        // says nothing, so it is treated as no features.
        if norm == 0.0 {
            return Err(EmbedError::NoFeatures);
        }
        Ok(Embedding(
            vector
                .iter()
                .map(|component| (component / norm) as f32)
                .collect(),
        ))
    }
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `tag` followed by the bytes of `parts`, in order.
fn fnv1a(tag: u8, parts: &[&str]) -> u64 {
    parts
        .iter()
        .fold(fnv1a_step(FNV_OFFSET_BASIS, &[tag]), |hash, part| {
            fnv1a_step(hash, part.as_bytes())
        })
}

/// FNV-1a 64 of `tag` followed by `bytes`.
fn fnv1a_bytes(tag: u8, bytes: &[u8]) -> u64 {
    fnv1a_step(fnv1a_step(FNV_OFFSET_BASIS, &[tag]), bytes)
}

fn fnv1a_step(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(text: &str) -> Embedding {
        LocalEmbedder::default().embed(text).expect("embeds")
    }

    fn similarity(a: &str, b: &str) -> f32 {
        embed(a).cosine(&embed(b))
    }

    #[track_caller]
    fn check_fnv(input: &str, expected: u64) {
        let hash = fnv1a_step(FNV_OFFSET_BASIS, input.as_bytes());
        assert_eq!(hash, expected, "fnv1a({input:?}) = {hash:#018x}");
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (Noll, fnv-1a 64).
        check_fnv("", 0xcbf2_9ce4_8422_2325);
        check_fnv("a", 0xaf63_dc4c_8601_ec8c);
        check_fnv("foobar", 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_same_text_gives_bitwise_the_same_vector_across_instances() {
        let text = "Ada Lovelace wrote the first published algorithm.";
        let first = LocalEmbedder::new(DEFAULT_DIMENSIONS)
            .embed(text)
            .expect("embeds");
        let second = LocalEmbedder::default().embed(text).expect("embeds");
        assert_eq!(first.to_bytes(), second.to_bytes());
    }

    #[test]
    fn embeddings_have_the_embedders_dimensions_and_unit_length() {
        for dimensions in [1, 2, 7, 64, DEFAULT_DIMENSIONS, 1000] {
            let embedder = LocalEmbedder::new(dimensions);
            for text in ["x", "The cat sat on the mat.", "日本語のテキスト 🦀 café"] {
                let embedding = embedder.embed(text).expect("embeds");
                assert_eq!(embedding.dimensions(), dimensions);
                assert_eq!(embedder.dimensions(), dimensions);
                let norm: f32 = embedding
                    .as_slice()
                    .iter()
                    .map(|c| c * c)
                    .sum::<f32>()
                    .sqrt();
                assert!(
                    (norm - 1.0).abs() < 1e-5,
                    "{dimensions}: {text:?} has norm {norm}"
                );
                let self_similarity = embedding.cosine(&embedding);
                assert!((self_similarity - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn zero_dimensions_are_taken_as_one() {
        assert_eq!(LocalEmbedder::new(0).dimensions(), 1);
    }

    #[test]
    fn text_without_words_has_no_features() {
        for text in ["", "   ", "...!?", "— — —", "\n\t"] {
            assert!(
                matches!(
                    LocalEmbedder::default().embed(text),
                    Err(EmbedError::NoFeatures)
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn case_and_punctuation_do_not_change_the_embedding() {
        assert_eq!(embed("The Cat, sat!"), embed("the cat sat"));
        assert_eq!(embed("ÉCOLE"), embed("école"));
    }

    #[test]
    fn bytes_round_trip_exactly() {
        let embedding = embed("Quarterly revenue grew by twelve percent in Europe.");
        let bytes = embedding.to_bytes();
        assert_eq!(bytes.len(), DEFAULT_DIMENSIONS * 4);
        assert_eq!(
            Embedding::from_bytes(&bytes).expect("well-formed"),
            embedding
        );

        let odd = Embedding::from(vec![1.5, -0.0, f32::MIN_POSITIVE, -3.25e7]);
        assert_eq!(
            Embedding::from_bytes(&odd.to_bytes()).expect("well-formed"),
            odd
        );
    }

    #[test]
    fn bytes_are_little_endian_f32s() {
        let embedding = Embedding::from(vec![1.0, -2.0]);
        assert_eq!(embedding.to_bytes(), [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    }

    #[test]
    fn bytes_not_a_multiple_of_four_are_malformed() {
        for len in [1, 2, 3, 5, 1023] {
            let error = Embedding::from_bytes(&vec![0; len]).expect_err("malformed");
            assert!(matches!(error, EmbedError::Malformed { len: got } if got == len));
        }
        assert_eq!(
            EmbedError::Malformed { len: 5 }.to_string(),
            "embedding bytes are malformed: 5 bytes is not a multiple of 4"
        );
    }

    #[test]
    fn cosine_of_different_dimensions_or_a_zero_vector_is_zero() {
        let unit = Embedding::from(vec![1.0, 0.0]);
        assert_eq!(unit.cosine(&Embedding::from(vec![1.0, 0.0, 0.0])), 0.0);
        assert_eq!(unit.cosine(&Embedding::from(vec![0.0, 0.0])), 0.0);
        assert_eq!(
            Embedding::from(vec![]).cosine(&Embedding::from(vec![])),
            0.0
        );
        assert_eq!(unit.cosine(&Embedding::from(vec![f32::NAN, 0.0])), 0.0);
        assert_eq!(unit.cosine(&Embedding::from(vec![-1.0, 0.0])), -1.0);
    }

    #[test]
    fn similar_sentences_score_higher_than_unrelated_ones() {
        let cat = "The cat sat on the mat.";
        let similar = "A cat was sitting on the mat.";
        let unrelated = "Quarterly revenue grew by twelve percent in Europe.";
        let close = similarity(cat, similar);
        let far = similarity(cat, unrelated);
        assert!(close > 0.4, "similar scored {close}");
        assert!(far.abs() < 0.2, "unrelated scored {far}");
        assert!(close > far + 0.3, "similar {close} vs unrelated {far}");
    }

    #[test]
    fn a_paraphrase_sharing_words_scores_higher_than_another_topic() {
        let original = "Ada Lovelace published the first algorithm for Babbage's Analytical \
                        Engine in 1843.";
        let paraphrase = "In 1843, the first algorithm meant for the Analytical Engine of \
                          Charles Babbage was published by Ada Lovelace.";
        let other_topic = "The central bank raised interest rates to curb inflation in 1843.";
        let paraphrase_score = similarity(original, paraphrase);
        let other_score = similarity(original, other_topic);
        assert!(
            paraphrase_score > other_score + 0.3,
            "paraphrase {paraphrase_score} vs other topic {other_score}"
        );
    }

    #[test]
    fn a_shared_word_stem_gives_some_similarity_through_trigrams() {
        let score = similarity("computation", "computing");
        assert!(score > 0.15, "stems scored {score}");
        assert!(similarity("computation", "elephant").abs() < score);
    }

    #[test]
    fn embedding_a_fixed_text_gives_pinned_components() {
        // A change here means stored embeddings no longer compare with new ones: change the
        // hashing only together with re-embedding every stored chunk.
        let text = "The cat sat on the mat.";
        let small = LocalEmbedder::new(8).embed(text).expect("embeds");
        let pinned_small: [f32; 8] = [
            0.5487397,
            -0.24388431,
            0.18291323,
            -0.060971078,
            -0.18291323,
            -0.36582646,
            0.36582646,
            -0.5487397,
        ];
        assert_eq!(small.as_slice(), pinned_small);

        let default = LocalEmbedder::default().embed(text).expect("embeds");
        let first_non_zero: Vec<(usize, f32)> = default
            .as_slice()
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, component)| *component != 0.0)
            .take(5)
            .collect();
        assert_eq!(
            first_non_zero,
            [
                (29, -0.1503292),
                (52, -0.1503292),
                (61, -0.1503292),
                (73, -0.1503292),
                (79, -0.0751646),
            ]
        );
    }
}
