//! Language ecosystem catalogers: npm, Python, Go, Rust, Java.

use crate::Cataloger;

pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
    vec![]
}
