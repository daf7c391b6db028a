//! Generated container names, `adjective_noun`, as Docker gives a container
//! that was not named.

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ancient", "bold", "brave", "bright", "brisk", "calm", "candid", "careful",
    "cheerful", "clever", "cosmic", "crisp", "curious", "daring", "deft", "eager", "earnest",
    "elegant", "fearless", "fervent", "frosty", "gentle", "gleaming", "golden", "graceful",
    "happy", "hardy", "humble", "jolly", "keen", "kind", "lively", "lucid", "lucky", "mellow",
    "merry", "mighty", "modest", "nimble", "noble", "patient", "placid", "plucky", "proud",
    "quick", "quiet", "radiant", "rapid", "serene", "sharp", "shiny", "silent", "sleek", "snowy",
    "solid", "spry", "steady", "sunny", "swift", "tender", "tidy", "tranquil", "upbeat", "valiant",
    "vivid", "warm", "wise", "witty", "zesty",
];

const NOUNS: &[&str] = &[
    "albatross",
    "antelope",
    "badger",
    "beaver",
    "bison",
    "caribou",
    "cheetah",
    "condor",
    "coyote",
    "crane",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "gazelle",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "jaguar",
    "kestrel",
    "koala",
    "lemur",
    "leopard",
    "lynx",
    "magpie",
    "marmot",
    "marten",
    "meerkat",
    "mongoose",
    "narwhal",
    "ocelot",
    "octopus",
    "orca",
    "osprey",
    "otter",
    "panda",
    "pelican",
    "penguin",
    "puffin",
    "quail",
    "raccoon",
    "raven",
    "salmon",
    "seal",
    "sparrow",
    "stork",
    "swan",
    "tapir",
    "tiger",
    "toucan",
    "turtle",
    "walrus",
    "weasel",
    "whale",
    "wombat",
    "wren",
    "yak",
    "zebra",
];

/// A name built from `seed` (random bytes); `attempt` > 0 appends a
/// number, for retries after a clash.
pub fn generate(seed: &[u8; 4], attempt: u32) -> String {
    let a = u16::from_le_bytes([seed[0], seed[1]]) as usize % ADJECTIVES.len();
    let n = u16::from_le_bytes([seed[2], seed[3]]) as usize % NOUNS.len();
    if attempt == 0 {
        format!("{}_{}", ADJECTIVES[a], NOUNS[n])
    } else {
        format!("{}_{}{}", ADJECTIVES[a], NOUNS[n], attempt)
    }
}

/// Docker's rule for user-given names.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(generate(&[1, 2, 3, 4], 0).contains('_'));
        assert!(generate(&[1, 2, 3, 4], 2).ends_with('2'));
        assert!(is_valid("kubia-container"));
        assert!(!is_valid("-x") && !is_valid("") && !is_valid("a/b"));
    }
}
