//! The experiment's seeded data: nothing is stored, everything is regenerated from a seed.
//!
//! - **math**: additions of two `DIGITS`-digit numbers written step by step, least significant
//!   digit first, each step `x+y+c=s` (digits, incoming carry, two-digit sum), then the
//!   `DIGITS + 1`-digit answer: `347+589=` -> `7+9+0=16,4+8+1=13,3+5+1=09,0936`. Answers are
//!   checked by [`check_math`], which parses and re-does the arithmetic. Only the problems are
//!   drawn here: the preference pairs are built per seed from the reference model's own
//!   mistakes ([`super::near_miss`], paper section 2.3).
//! - **style** (a value with several decisions per answer): `echo ab cde fg?` answered item by
//!   item, each word either politely (`ab.`) or shouted (`AB!`). The preferred answer is polite
//!   throughout, the rejected one shouts throughout, so a pair differs in almost every token.
//!   The SFT data decides each item's style at random, mostly polite except for words starting
//!   with one of [`RUDE_LETTERS`], which it mostly shouts: the reference model is polite on most
//!   answers but not all, and alignment has to change [`STYLE_ITEMS`] decisions per answer.
//! - **reverse** (the held-out skill, in SFT only, never aligned on): `rev abcd?` -> `dcba`.
use bnf_trainer::data::{responses, Example, Response};
use bnf_trainer::rng::Rng;

/// Digits of each operand.
pub const DIGITS: usize = 3;
/// Shortest and longest word of the style and reverse tasks.
const WORD_LEN: (usize, usize) = (2, 4);
/// Words per style prompt (style decisions per answer).
pub const STYLE_ITEMS: usize = 3;
/// First letters whose items the SFT data mostly shouts.
pub const RUDE_LETTERS: &[u8] = b"qz";
/// Chance that an SFT style item is polite: for a word starting with one of [`RUDE_LETTERS`],
/// and for any other word.
pub const SFT_POLITE: (f64, f64) = (0.05, 0.8);

/// The prompt of `a + b`.
pub fn math_prompt(a: usize, b: usize) -> String {
    format!("{a:0w$}+{b:0w$}=", w = DIGITS)
}

/// The step-by-step solution of `a + b` (see the module doc).
pub fn math_solution(a: usize, b: usize) -> String {
    let digit = |n: usize, i: usize| (n / 10usize.pow(i as u32)) % 10;
    let mut steps = Vec::with_capacity(DIGITS + 1);
    let mut carry = 0;
    for i in 0..DIGITS {
        let (x, y) = (digit(a, i), digit(b, i));
        let s = x + y + carry;
        steps.push(format!("{x}+{y}+{carry}={s:02}"));
        carry = s / 10;
    }
    steps.push(format!("{:0w$}", a + b, w = DIGITS + 1));
    steps.join(",")
}

/// Whether `completion` is a correct step-by-step solution of `prompt` (`a+b=`): every step
/// uses the right digits and carry and adds correctly, and the answer is `a + b`. Parses the
/// text on its own terms, so it checks [`math_solution`] rather than repeating it.
pub fn check_math(prompt: &str, completion: &str) -> bool {
    let Some((a, b)) = prompt
        .strip_suffix('=')
        .and_then(|p| p.split_once('+'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
    else {
        return false;
    };
    let parts: Vec<&str> = completion.split(',').collect();
    if parts.len() != DIGITS + 1 {
        return false;
    }
    let (mut carry, mut a_rest, mut b_rest) = (0, a, b);
    for step in &parts[..DIGITS] {
        let bytes = step.as_bytes();
        let ok_shape = bytes.len() == 8
            && bytes[1] == b'+'
            && bytes[3] == b'+'
            && bytes[5] == b'='
            && [0, 2, 4, 6, 7].iter().all(|&i| bytes[i].is_ascii_digit());
        if !ok_shape {
            return false;
        }
        let d = |i: usize| (bytes[i] - b'0') as usize;
        let (x, y, c, s) = (d(0), d(2), d(4), 10 * d(6) + d(7));
        if x != a_rest % 10 || y != b_rest % 10 || c != carry || s != x + y + c {
            return false;
        }
        carry = s / 10;
        a_rest /= 10;
        b_rest /= 10;
    }
    let answer = parts[DIGITS];
    answer.len() == DIGITS + 1
        && answer.bytes().all(|c| c.is_ascii_digit())
        && answer.parse::<usize>() == Ok(a + b)
}

/// `text` with exactly one of its digits replaced by a different digit (position and new
/// digit drawn from `rng`). Errors if `text` has no digit.
pub fn one_wrong_digit(text: &str, rng: &mut Rng) -> Result<String, String> {
    let mut bytes = text.as_bytes().to_vec();
    let digits: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit())
        .collect();
    if digits.is_empty() {
        return Err(format!("one_wrong_digit: no digit in {text:?}"));
    }
    let pos = digits[rng.below(digits.len())];
    let old = (bytes[pos] - b'0') as usize;
    bytes[pos] = b'0' + ((old + 1 + rng.below(9)) % 10) as u8;
    String::from_utf8(bytes).map_err(|e| format!("one_wrong_digit: {e}"))
}

/// The style prompt for `words`.
pub fn style_prompt(words: &[String]) -> String {
    format!("echo {}?", words.join(" "))
}

/// One style item: polite (`ab.`) or shouted (`AB!`).
pub fn style_item(word: &str, polite: bool) -> String {
    if polite {
        format!("{word}.")
    } else {
        format!("{}!", word.to_ascii_uppercase())
    }
}

/// The answer with each item's style given by `polite`.
pub fn style_answer(words: &[String], polite: impl Fn(usize) -> bool) -> String {
    let items: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| style_item(w, polite(i)))
        .collect();
    items.join(" ")
}

/// The preferred answer: polite throughout.
pub fn style_chosen(words: &[String]) -> String {
    style_answer(words, |_| true)
}

/// The dispreferred answer: shouted throughout.
pub fn style_rejected(words: &[String]) -> String {
    style_answer(words, |_| false)
}

/// Whether `completion` is the preferred answer to a style `prompt`.
pub fn check_style(prompt: &str, completion: &str) -> bool {
    prompt
        .strip_prefix("echo ")
        .and_then(|p| p.strip_suffix('?'))
        .is_some_and(|w| {
            let words: Vec<String> = w.split(' ').map(str::to_string).collect();
            completion == style_chosen(&words)
        })
}

/// Whether the SFT data mostly shouts `word`.
pub fn is_rude(word: &str) -> bool {
    word.bytes()
        .next()
        .is_some_and(|c| RUDE_LETTERS.contains(&c))
}

/// The held-out skill's prompt for `word`.
pub fn reverse_prompt(word: &str) -> String {
    format!("rev {word}?")
}

/// The held-out skill's answer: `word` reversed.
pub fn reverse_answer(word: &str) -> String {
    word.chars().rev().collect()
}

/// Sizes of every split (counts of problems, prompts or words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSizes {
    /// Math problems in the SFT data (their correct solutions).
    pub sft_math: usize,
    /// Style prompts in the SFT data (each item's style drawn as [`SFT_POLITE`] says).
    pub sft_style: usize,
    /// Reverse prompts in the SFT data.
    pub sft_reverse: usize,
    /// Math problems screened for the reference model's mistakes (the training pairs).
    pub math_pool: usize,
    /// Style preference pairs to align on.
    pub style_pairs: usize,
    /// Held-out prompts of each aligned task for choosing rates and probing collapse.
    pub val: usize,
    /// Held-out prompts of each task (the reverse skill included) for the reported numbers.
    pub test: usize,
}

/// All data of one experiment. Every split's prompts are distinct from every other split's.
#[derive(Clone, Debug)]
pub struct Tasks {
    /// SFT data: correct math solutions, style answers with drawn styles, reversed words; all
    /// preferred and unpaired.
    pub sft: Vec<Response>,
    /// Math problems to build training pairs from.
    pub math_train: Vec<(usize, usize)>,
    /// Held-out math problems (rate choice, collapse probes).
    pub math_val: Vec<(usize, usize)>,
    /// Held-out math problems (reported numbers; their solutions are the math task).
    pub math_test: Vec<(usize, usize)>,
    /// Style pairs to align on.
    pub style_train: Vec<Response>,
    /// Held-out style pairs (rate choice, collapse probes).
    pub style_val: Vec<Response>,
    /// Held-out style pairs (reported numbers).
    pub style_test: Vec<Response>,
    /// Held-out reverse prompts with their answers (the alignment tax).
    pub reverse_test: Vec<Response>,
}

/// Pairs `(prompt, chosen, rejected)` as responses (ids = positions).
pub fn pairs(items: &[(String, String, String)]) -> Vec<Response> {
    let examples: Vec<(usize, Example)> = items
        .iter()
        .enumerate()
        .map(|(i, (prompt, chosen, rejected))| {
            let ex = Example::Paired {
                prompt: prompt.clone(),
                chosen: chosen.clone(),
                rejected: rejected.clone(),
            };
            (i + 1, ex)
        })
        .collect();
    responses(&examples)
}

/// Lone preferred responses `(prompt, completion)` (ids = positions).
pub fn singles(items: &[(String, String)]) -> Vec<Response> {
    let examples: Vec<(usize, Example)> = items
        .iter()
        .enumerate()
        .map(|(i, (prompt, completion))| {
            let ex = Example::Unpaired {
                prompt: prompt.clone(),
                completion: completion.clone(),
                label: true,
            };
            (i + 1, ex)
        })
        .collect();
    responses(&examples)
}

/// Cut `items` into consecutive splits of the given sizes.
fn split<T: Clone>(items: &[T], sizes: &[usize]) -> Vec<Vec<T>> {
    let mut start = 0;
    sizes
        .iter()
        .map(|&n| {
            let part = items[start..start + n].to_vec();
            start += n;
            part
        })
        .collect()
}

impl Tasks {
    /// Generate every split from `seed`. Errors if the sizes ask for more distinct problems
    /// or words than exist.
    pub fn generate(sizes: TaskSizes, seed: u64) -> Result<Tasks, String> {
        let mut rng = Rng::new(seed);
        let max = 10usize.pow(DIGITS as u32);
        let math_n = sizes.sft_math + sizes.math_pool + sizes.val + sizes.test;
        if math_n > max * max / 2 {
            return Err(format!(
                "experiment data: {math_n} distinct math problems asked for, at most {} allowed",
                max * max / 2
            ));
        }
        // Draw distinct problems by rejection: the space is far larger than any split.
        let mut seen = std::collections::HashSet::new();
        let mut problems = Vec::with_capacity(math_n);
        while problems.len() < math_n {
            let p = (rng.below(max), rng.below(max));
            if seen.insert(p) {
                problems.push(p);
            }
        }
        let m = split(
            &problems,
            &[sizes.sft_math, sizes.math_pool, sizes.val, sizes.test],
        );
        let style_n = sizes.sft_style + sizes.style_pairs + sizes.val + sizes.test;
        let prompts = word_lists(style_n, &mut rng)?;
        let w = split(
            &prompts,
            &[sizes.sft_style, sizes.style_pairs, sizes.val, sizes.test],
        );
        let style_set = |ws: &[Vec<String>]| -> Vec<_> {
            ws.iter()
                .map(|w| (style_prompt(w), style_chosen(w), style_rejected(w)))
                .collect()
        };
        let reversed = distinct_words(sizes.sft_reverse + sizes.test, &mut rng)?;
        let mut sft: Vec<(String, String)> = m[0]
            .iter()
            .map(|&(a, b)| (math_prompt(a, b), math_solution(a, b)))
            .collect();
        for words in &w[0] {
            let polite: Vec<bool> = words
                .iter()
                .map(|word| {
                    let p = if is_rude(word) {
                        SFT_POLITE.0
                    } else {
                        SFT_POLITE.1
                    };
                    rng.uniform() < p
                })
                .collect();
            sft.push((style_prompt(words), style_answer(words, |i| polite[i])));
        }
        let reverse = |ws: &[String]| -> Vec<(String, String)> {
            ws.iter()
                .map(|w| (reverse_prompt(w), reverse_answer(w)))
                .collect()
        };
        sft.extend(reverse(&reversed[..sizes.sft_reverse]));
        // Shuffle so that every SFT batch mixes the tasks.
        for i in (1..sft.len()).rev() {
            sft.swap(i, rng.below(i + 1));
        }
        Ok(Tasks {
            sft: singles(&sft),
            math_train: m[1].clone(),
            math_val: m[2].clone(),
            math_test: m[3].clone(),
            style_train: pairs(&style_set(&w[1])),
            style_val: pairs(&style_set(&w[2])),
            style_test: pairs(&style_set(&w[3])),
            reverse_test: singles(&reverse(&reversed[sizes.sft_reverse..])),
        })
    }

    /// Every response of every split, for a block-size check.
    pub fn all(&self) -> impl Iterator<Item = &Response> {
        [
            &self.sft,
            &self.style_train,
            &self.style_val,
            &self.style_test,
            &self.reverse_test,
        ]
        .into_iter()
        .flatten()
    }
}

/// `count` distinct random lowercase words.
fn distinct_words(count: usize, rng: &mut Rng) -> Result<Vec<String>, String> {
    let space: usize = (WORD_LEN.0..=WORD_LEN.1)
        .map(|l| 26usize.pow(l as u32))
        .sum();
    if count > space / 2 {
        return Err(format!(
            "experiment data: {count} distinct words asked for, at most {} allowed",
            space / 2
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let w = word(rng);
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    Ok(out)
}

fn word(rng: &mut Rng) -> String {
    let len = WORD_LEN.0 + rng.below(WORD_LEN.1 - WORD_LEN.0 + 1);
    (0..len)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

/// `count` distinct style prompts of [`STYLE_ITEMS`] random words each.
fn word_lists(count: usize, rng: &mut Rng) -> Result<Vec<Vec<String>>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    let mut tries = 0usize;
    while out.len() < count {
        tries += 1;
        if tries > 10 * count + 100 {
            return Err(format!(
                "experiment data: {count} distinct style prompts not found"
            ));
        }
        let ws: Vec<String> = (0..STYLE_ITEMS).map(|_| word(rng)).collect();
        if seen.insert(ws.clone()) {
            out.push(ws);
        }
    }
    Ok(out)
}

/// The longest sequence (BOS + prompt + completion + EOS) any split can hold.
pub fn max_sequence_len() -> usize {
    let math = math_prompt(0, 0).len() + math_solution(0, 0).len();
    let long = vec!["w".repeat(WORD_LEN.1); STYLE_ITEMS];
    let style = style_prompt(&long).len() + style_chosen(&long).len();
    let rev = reverse_prompt(&long[0]).len() + long[0].len();
    math.max(style).max(rev) + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnf_trainer::tokenizer::decode;

    fn text(r: &Response) -> (String, String) {
        (decode(&r.prompt), decode(&r.completion))
    }

    #[test]
    fn solutions_check_and_carry() {
        assert_eq!(math_solution(347, 589), "7+9+0=16,4+8+1=13,3+5+1=09,0936");
        assert_eq!(math_solution(999, 999), "9+9+0=18,9+9+1=19,9+9+1=19,1998");
        assert_eq!(math_solution(0, 5), "0+5+0=05,0+0+0=00,0+0+0=00,0005");
        let mut rng = Rng::new(1);
        for _ in 0..2000 {
            let (a, b) = (rng.below(1000), rng.below(1000));
            assert!(check_math(&math_prompt(a, b), &math_solution(a, b)));
            // Another problem's solution is wrong for this prompt.
            let c = (a + 1 + rng.below(999)) % 1000;
            assert!(!check_math(&math_prompt(a, b), &math_solution(c, b)));
        }
        assert!(!check_math("347+589=", "7+9+0=16,4+8+1=13,3+5+1=09,0935"));
        assert!(!check_math("347+589=", "7+9+0=16,4+8+1=13,3+5+1=09"));
        assert!(!check_math("347+589", "7+9+0=16,4+8+1=13,3+5+1=09,0936"));
        assert!(!check_math("347+589=", ""));
    }

    #[test]
    fn one_wrong_digit_changes_exactly_one_digit_and_fails_the_check() {
        let mut rng = Rng::new(7);
        for k in 0..300 {
            let (a, b) = (k * 7 % 1000, k * 13 % 1000);
            let right = math_solution(a, b);
            let wrong = one_wrong_digit(&right, &mut rng).unwrap();
            assert!(!check_math(&math_prompt(a, b), &wrong), "{right} {wrong}");
            let diff: Vec<(u8, u8)> = right
                .bytes()
                .zip(wrong.bytes())
                .filter(|(x, y)| x != y)
                .collect();
            assert_eq!((diff.len(), right.len()), (1, wrong.len()));
            assert!(diff[0].0.is_ascii_digit() && diff[0].1.is_ascii_digit());
        }
        assert!(one_wrong_digit("abc", &mut rng).is_err());
    }

    #[test]
    fn style_pairs_differ_a_lot_and_sft_mixes_styles_by_first_letter() {
        let tasks = Tasks::generate(SIZES, 3).unwrap();
        for pair in tasks.style_train.chunks(2) {
            let ((p, chosen), (_, rejected)) = (text(&pair[0]), text(&pair[1]));
            assert!(check_style(&p, &chosen) && !check_style(&p, &rejected));
            assert_eq!(chosen.split(' ').count(), STYLE_ITEMS);
            let same = chosen
                .bytes()
                .zip(rejected.bytes())
                .filter(|(x, y)| x == y)
                .count();
            assert!(
                same * 2 < chosen.len().min(rejected.len()),
                "{chosen} {rejected}"
            );
        }
        // Polite share of SFT items, for words with and without a rude first letter.
        let (mut polite, mut total) = ([0usize; 2], [0usize; 2]);
        for r in &tasks.sft {
            let (p, c) = text(r);
            let Some(words) = p.strip_prefix("echo ").and_then(|p| p.strip_suffix('?')) else {
                continue;
            };
            for (w, item) in words.split(' ').zip(c.split(' ')) {
                let k = usize::from(!is_rude(w));
                total[k] += 1;
                polite[k] += usize::from(item == style_item(w, true));
                assert!(item == style_item(w, true) || item == style_item(w, false));
            }
        }
        for k in 0..2 {
            let share = polite[k] as f64 / total[k] as f64;
            let want = [SFT_POLITE.0, SFT_POLITE.1][k];
            // Binomial: within 4 standard deviations.
            let sd = (want * (1.0 - want) / total[k] as f64).sqrt();
            assert!(
                (share - want).abs() < 4.0 * sd + 1e-9,
                "{k}: {share} vs {want}"
            );
        }
        assert!(is_rude("qa") && is_rude("zz") && !is_rude("aq"));
        assert_eq!(reverse_answer("abc"), "cba");
    }

    const SIZES: TaskSizes = TaskSizes {
        sft_math: 300,
        sft_style: 2000,
        sft_reverse: 50,
        math_pool: 200,
        style_pairs: 100,
        val: 50,
        test: 60,
    };

    #[test]
    fn splits_are_disjoint_sized_and_seeded() {
        let t = Tasks::generate(SIZES, 11).unwrap();
        assert_eq!(t.sft.len(), 300 + 2000 + 50);
        assert!(t.sft.iter().all(|r| r.label > 0.0 && r.partner.is_none()));
        assert_eq!(t.math_train.len(), 200);
        assert_eq!((t.math_val.len(), t.math_test.len()), (50, 60));
        assert_eq!((t.style_val.len(), t.style_test.len()), (100, 120));
        assert_eq!(t.reverse_test.len(), 60);
        let prompts = |rs: &[Response]| -> std::collections::HashSet<Vec<u32>> {
            rs.iter().map(|r| r.prompt.clone()).collect()
        };
        let math = |ps: &[(usize, usize)]| -> std::collections::HashSet<Vec<u32>> {
            ps.iter()
                .map(|&(a, b)| bnf_trainer::tokenizer::encode(&math_prompt(a, b)))
                .collect()
        };
        let sets = [
            prompts(&t.sft),
            math(&t.math_train),
            math(&t.math_val),
            math(&t.math_test),
            prompts(&t.style_train),
            prompts(&t.style_val),
            prompts(&t.style_test),
            prompts(&t.reverse_test),
        ];
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                assert!(sets[i].is_disjoint(&sets[j]), "splits {i} and {j} overlap");
            }
        }
        let again = Tasks::generate(SIZES, 11).unwrap();
        assert_eq!(
            (&again.math_test, &again.style_test),
            (&t.math_test, &t.style_test)
        );
        let other = Tasks::generate(SIZES, 12).unwrap();
        assert_ne!(other.math_test, t.math_test);
        assert!(t
            .all()
            .all(|r| r.prompt.len() + r.completion.len() + 2 <= max_sequence_len()));
        let too_many = TaskSizes {
            sft_math: 2_000_000,
            ..SIZES
        };
        assert!(Tasks::generate(too_many, 1)
            .unwrap_err()
            .contains("distinct"));
    }
}
