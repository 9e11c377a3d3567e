//! How the app writes a count: digits grouped by thousands, with the word that agrees.

/// `15208` as "15,208".
pub fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// "1 entity", "2 entities", "15,208 characters".
pub fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(count), if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words_with_thousands_grouped() {
        assert_eq!(counted(1, "relation", "relations"), "1 relation");
        assert_eq!(counted(0, "relation", "relations"), "0 relations");
        assert_eq!(
            counted(15_208, "character", "characters"),
            "15,208 characters"
        );
        assert_eq!(
            counted(1_000_000, "character", "characters"),
            "1,000,000 characters"
        );
        assert_eq!(counted(999, "entity", "entities"), "999 entities");
        assert_eq!(grouped(100_000), "100,000");
    }
}
