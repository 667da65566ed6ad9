// A Rust program that panics with panic=abort, a few frames deep.
#[inline(never)]
fn checked_div(a: u32, b: u32) -> u32 {
    if b == 0 {
        panic!("division by zero");
    }
    a / b
}
#[inline(never)]
fn compute(values: &[u32]) -> u32 {
    values.iter().map(|v| checked_div(100, *v)).sum()
}
fn main() {
    let values: Vec<u32> = std::env::args().skip(1).map(|s| s.len() as u32).chain([0]).collect();
    println!("{}", compute(&values));
}
