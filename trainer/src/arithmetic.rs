//! The built-in data of `bnf demo` and of the tests: three-digit additions (`"007+450="`) with
//! the correct sum as the chosen answer and a one-digit-wrong sum as the rejected one.

use crate::rng::Rng;

/// Operands are `0..MAX_OPERAND`, written with `DIGITS` digits, as is the sum.
const MAX_OPERAND: usize = 500;
/// Digits of operands and answers.
const DIGITS: usize = 3;
/// Training problems.
const TRAIN_COUNT: usize = 20_000;

/// The correct answer and a one-digit-wrong answer to `a + b`, both two digits.
fn answers(a: usize, b: usize, rng: &mut Rng) -> (String, String) {
    let right = format!("{:0w$}", a + b, w = DIGITS);
    let mut wrong: Vec<u8> = right.clone().into_bytes();
    let pos = rng.below(DIGITS);
    let digit = wrong[pos] - b'0';
    wrong[pos] = b'0' + ((digit as usize + 1 + rng.below(9)) % 10) as u8;
    (right, String::from_utf8(wrong).expect("digits"))
}

/// Built-in data as JSON Lines: `(train, eval)`, `TRAIN_COUNT` training problems and
/// `eval_count` held-out ones, all distinct.
pub fn arithmetic_data(seed: u64, eval_count: usize) -> (String, String) {
    let mut rng = Rng::new(seed);
    let mut problems: Vec<(usize, usize)> = (0..MAX_OPERAND)
        .flat_map(|a| (0..MAX_OPERAND).map(move |b| (a, b)))
        .collect();
    rng.shuffle(&mut problems);
    let line = |&(a, b): &(usize, usize), rng: &mut Rng| {
        let (chosen, rejected) = answers(a, b, rng);
        let prompt = format!("{a:0w$}+{b:0w$}=", w = DIGITS);
        let ex = serde_json::json!({"prompt": prompt, "chosen": chosen, "rejected": rejected});
        format!("{ex}\n")
    };
    problems.truncate(eval_count + TRAIN_COUNT);
    let (eval, train) = problems.split_at(eval_count);
    let train: String = train.iter().map(|p| line(p, &mut rng)).collect();
    let eval: String = eval.iter().map(|p| line(p, &mut rng)).collect();
    (train, eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_differs_from_chosen_in_exactly_one_digit() {
        let mut rng = Rng::new(5);
        for a in (0..MAX_OPERAND).step_by(7) {
            for b in (0..MAX_OPERAND).step_by(3) {
                let (right, wrong) = answers(a, b, &mut rng);
                assert_eq!(right.parse::<usize>().unwrap(), a + b);
                let diff = right
                    .bytes()
                    .zip(wrong.bytes())
                    .filter(|(x, y)| x != y)
                    .count();
                assert_eq!(diff, 1, "{right} vs {wrong}");
                assert!(wrong.bytes().all(|c| c.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn held_out_problems_are_not_trained_on() {
        let (train, eval) = arithmetic_data(3, 100);
        let prompts = |s: &str| -> std::collections::HashSet<String> {
            crate::data::parse_jsonl(s)
                .unwrap()
                .into_iter()
                .map(|(_, e)| match e {
                    crate::data::Example::Paired { prompt, .. } => prompt,
                    crate::data::Example::Unpaired { prompt, .. } => prompt,
                })
                .collect()
        };
        let (t, e) = (prompts(&train), prompts(&eval));
        assert_eq!(e.len(), 100);
        assert_eq!(t.len(), TRAIN_COUNT);
        assert!(t.is_disjoint(&e));
    }
}
