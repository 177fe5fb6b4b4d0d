//! Reads one file out of an image and reports how long it took: `collect TARGET PATH`.
//! Used to measure layer streaming (see docs/benchmarks.md, "image access").

use std::time::Instant;

use moat_image::{Image, OpenOptions, Select, Target};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(target), Some(path)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: collect TARGET PATH");
        std::process::exit(2);
    };
    let start = Instant::now();
    let options = OpenOptions {
        progress: true,
        insecure_registry: std::env::var_os("INSECURE").is_some(),
        ..OpenOptions::default()
    };
    let result = Target::parse(target)
        .and_then(|t| Image::open(&t, &options))
        .and_then(|image| {
            image.collect(&|m| {
                if m.path == *path {
                    Select::Content
                } else {
                    Select::Skip
                }
            })
        });
    match result {
        Ok(view) => {
            let size = view
                .resolve(path)
                .and_then(|e| e.content.as_ref())
                .map(Vec::len);
            println!(
                "{path}: {size:?} bytes, {:.3} s",
                start.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            eprintln!("{target}: {e}");
            std::process::exit(2);
        }
    }
}
