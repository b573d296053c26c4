//! The experiment's seeded data: nothing is stored, everything is regenerated from a seed.
//!
//! - **math**: additions of two `DIGITS`-digit numbers written step by step, least significant
//!   digit first, each step `x+y+c=s` (digits, incoming carry, two-digit sum), then the
//!   `DIGITS + 1`-digit answer: `347+589=` -> `7+9+0=16,4+8+1=13,3+5+1=09,0936`. Answers are
//!   checked by [`check_math`], which parses and re-does the arithmetic.
//! - **math near-duplicate pairs** (paper section 2.3): chosen = the correct solution,
//!   rejected = the same text with exactly one digit changed ([`one_wrong_digit`]).
//! - **style pairs** (pairs that differ a lot): `echo abc?` answered politely
//!   (`sure: abc.`, preferred) or shouted (`ABC!!!`, dispreferred). The SFT data holds both
//!   styles equally, so the reference model has no style preference to start from; the style
//!   task is solved when greedy decoding takes the polite style ([`POLITE`]).

use bnf_trainer::data::{responses, Example, Response};
use bnf_trainer::rng::Rng;

/// Digits of each operand.
pub const DIGITS: usize = 3;
/// Shortest and longest echo word.
const WORD_LEN: (usize, usize) = (3, 6);

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

/// The style prompt for `word`.
pub fn style_prompt(word: &str) -> String {
    format!("echo {word}?")
}

/// How every preferred (polite) answer starts: greedy decoding that starts this way has taken
/// the preferred style (the style task's measure, whatever it then copies).
pub const POLITE: &str = "sure: ";

/// The preferred (polite) answer.
pub fn style_chosen(word: &str) -> String {
    format!("{POLITE}{word}.")
}

/// The dispreferred (shouted) answer.
pub fn style_rejected(word: &str) -> String {
    format!("{}!!!", word.to_ascii_uppercase())
}

/// Whether `completion` is the preferred-style answer to a style `prompt`.
pub fn check_style(prompt: &str, completion: &str) -> bool {
    prompt
        .strip_prefix("echo ")
        .and_then(|p| p.strip_suffix('?'))
        .is_some_and(|w| completion == style_chosen(w))
}

/// Sizes of every split (counts of problems, pairs or words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSizes {
    /// Math problems in the SFT data (their correct solutions).
    pub sft_math: usize,
    /// Words in the SFT data (each with both styles).
    pub sft_style: usize,
    /// Near-duplicate math preference pairs to align on.
    pub math_pairs: usize,
    /// Style preference pairs to align on.
    pub style_pairs: usize,
    /// Held-out pairs of each kind for choosing the learning rate.
    pub val: usize,
    /// Held-out pairs of each kind for the reported numbers.
    pub test: usize,
}

/// All data of one experiment. Every split's prompts are distinct from every other split's.
#[derive(Clone, Debug)]
pub struct Tasks {
    /// SFT data: correct math solutions and both styles of answer, all preferred and unpaired.
    pub sft: Vec<Response>,
    /// Math near-duplicate pairs to align on.
    pub math_train: Vec<Response>,
    /// Style pairs to align on.
    pub style_train: Vec<Response>,
    /// Held-out math pairs (learning-rate choice).
    pub math_val: Vec<Response>,
    /// Held-out math pairs (reported numbers; their chosen sides are the math task).
    pub math_test: Vec<Response>,
    /// Held-out style pairs (learning-rate choice).
    pub style_val: Vec<Response>,
    /// Held-out style pairs (reported numbers).
    pub style_test: Vec<Response>,
}

fn pairs(items: &[(String, String, String)]) -> Vec<Response> {
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

fn singles(items: &[(String, String)]) -> Vec<Response> {
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

/// `count` distinct random lowercase words.
fn words(count: usize, rng: &mut Rng) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let len = WORD_LEN.0 + rng.below(WORD_LEN.1 - WORD_LEN.0 + 1);
        let w: String = (0..len)
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect();
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
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
    /// than exist.
    pub fn generate(sizes: TaskSizes, seed: u64) -> Result<Tasks, String> {
        let mut rng = Rng::new(seed);
        let max = 10usize.pow(DIGITS as u32);
        let math_n = sizes.sft_math + sizes.math_pairs + 2 * (sizes.val + sizes.test);
        if math_n > max * max {
            return Err(format!(
                "experiment data: {math_n} distinct math problems asked for, only {} exist",
                max * max
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
            &[sizes.sft_math, sizes.math_pairs, sizes.val, sizes.test],
        );
        let math_set = |ps: &[(usize, usize)], rng: &mut Rng| -> Result<Vec<_>, String> {
            ps.iter()
                .map(|&(a, b)| {
                    let right = math_solution(a, b);
                    let wrong = one_wrong_digit(&right, rng)?;
                    Ok((math_prompt(a, b), right, wrong))
                })
                .collect()
        };
        let style_n = sizes.sft_style + sizes.style_pairs + sizes.val + sizes.test;
        let ws = words(style_n, &mut rng);
        let w = split(
            &ws,
            &[sizes.sft_style, sizes.style_pairs, sizes.val, sizes.test],
        );
        let style_set = |ws: &[String]| -> Vec<_> {
            ws.iter()
                .map(|w| (style_prompt(w), style_chosen(w), style_rejected(w)))
                .collect()
        };
        let mut sft: Vec<(String, String)> = m[0]
            .iter()
            .map(|&(a, b)| (math_prompt(a, b), math_solution(a, b)))
            .collect();
        for w in &w[0] {
            sft.push((style_prompt(w), style_chosen(w)));
            sft.push((style_prompt(w), style_rejected(w)));
        }
        let math_train = pairs(&math_set(&m[1], &mut rng)?);
        let math_val = pairs(&math_set(&m[2], &mut rng)?);
        let math_test = pairs(&math_set(&m[3], &mut rng)?);
        Ok(Tasks {
            sft: singles(&sft),
            math_train,
            style_train: pairs(&style_set(&w[1])),
            math_val,
            math_test,
            style_val: pairs(&style_set(&w[2])),
            style_test: pairs(&style_set(&w[3])),
        })
    }

    /// Every response of every split, for a block-size check.
    pub fn all(&self) -> impl Iterator<Item = &Response> {
        [
            &self.sft,
            &self.math_train,
            &self.style_train,
            &self.math_val,
            &self.math_test,
            &self.style_val,
            &self.style_test,
        ]
        .into_iter()
        .flatten()
    }
}

/// The longest sequence (BOS + prompt + completion + EOS) any split can hold.
pub fn max_sequence_len() -> usize {
    let math = math_prompt(0, 0).len() + math_solution(0, 0).len();
    let style = style_prompt(&"w".repeat(WORD_LEN.1)).len()
        + style_chosen(&"w".repeat(WORD_LEN.1))
            .len()
            .max(style_rejected(&"w".repeat(WORD_LEN.1)).len());
    math.max(style) + 2
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
    fn near_duplicates_differ_in_exactly_one_digit_and_fail_the_check() {
        let tasks = Tasks::generate(SIZES, 7).unwrap();
        for set in [&tasks.math_train, &tasks.math_val, &tasks.math_test] {
            for pair in set.chunks(2) {
                let ((p, chosen), (p2, rejected)) = (text(&pair[0]), text(&pair[1]));
                assert_eq!(p, p2);
                assert!((pair[0].label, pair[1].label) == (1.0, -1.0));
                assert_eq!(pair[0].partner, Some(pair[1].id));
                assert!(check_math(&p, &chosen), "{p}{chosen}");
                assert!(!check_math(&p, &rejected), "{p}{rejected}");
                assert_eq!(chosen.len(), rejected.len());
                let diff: Vec<(u8, u8)> = chosen
                    .bytes()
                    .zip(rejected.bytes())
                    .filter(|(x, y)| x != y)
                    .collect();
                assert_eq!(diff.len(), 1, "{chosen} vs {rejected}");
                assert!(diff[0].0.is_ascii_digit() && diff[0].1.is_ascii_digit());
            }
        }
    }

    #[test]
    fn style_pairs_differ_a_lot() {
        let tasks = Tasks::generate(SIZES, 3).unwrap();
        for pair in tasks.style_train.chunks(2) {
            let ((p, chosen), (_, rejected)) = (text(&pair[0]), text(&pair[1]));
            assert!(check_style(&p, &chosen) && !check_style(&p, &rejected));
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
    }

    const SIZES: TaskSizes = TaskSizes {
        sft_math: 300,
        sft_style: 100,
        math_pairs: 200,
        style_pairs: 100,
        val: 50,
        test: 60,
    };

    #[test]
    fn splits_are_disjoint_sized_and_seeded() {
        let t = Tasks::generate(SIZES, 11).unwrap();
        assert_eq!(t.sft.len(), 300 + 2 * 100);
        assert!(t.sft.iter().all(|r| r.label > 0.0 && r.partner.is_none()));
        assert_eq!(t.math_train.len(), 400);
        assert_eq!((t.math_val.len(), t.math_test.len()), (100, 120));
        assert_eq!((t.style_val.len(), t.style_test.len()), (100, 120));
        let prompts = |rs: &[Response]| -> std::collections::HashSet<Vec<u32>> {
            rs.iter().map(|r| r.prompt.clone()).collect()
        };
        let sets = [
            prompts(&t.sft),
            prompts(&t.math_train),
            prompts(&t.style_train),
            prompts(&t.math_val),
            prompts(&t.math_test),
            prompts(&t.style_val),
            prompts(&t.style_test),
        ];
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                assert!(sets[i].is_disjoint(&sets[j]), "splits {i} and {j} overlap");
            }
        }
        let again = Tasks::generate(SIZES, 11).unwrap();
        assert_eq!(again.math_test, t.math_test);
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
