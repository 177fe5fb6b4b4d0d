//! The Chromium harness against a tiny loopback HTTP server: it sees console errors, uncaught
//! exceptions, CSP violations and failed requests, reads the DOM, follows a click and takes a screenshot.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use moat_testkit::chromium::{Browser, Error, png_size};

/// Serves `/` (clean), `/bad` (console error, exception, CSP-blocked inline script, a 404 image).
fn serve() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let (status, ctype, body) = match path.as_str() {
                "/" => ("200 OK", "text/html", "<!doctype html><title>ok</title><link rel=icon href=data:,><h1 id=h>Hello &lt;b&gt;</h1><a id=go href=/two>two</a>".to_string()),
                "/two" => ("200 OK", "text/html", "<!doctype html><title>two</title><link rel=icon href=data:,><p class=x>a</p><p class=x>b</p>".to_string()),
                "/app.js" => ("200 OK", "text/javascript", "console.error('boom'); throw new Error('uncaught');".to_string()),
                "/bad" => ("200 OK", "text/html", "<!doctype html><title>bad</title><link rel=icon href=data:,><script src=/app.js></script><script>window.inline=1</script><img src=/missing.png>".to_string()),
                _ => ("404 Not Found", "text/plain", "no".to_string()),
            };
            let csp = "default-src 'self'; img-src 'self' data:";
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Security-Policy: {csp}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn records_errors_reads_dom_follows_links_and_screenshots() {
    let work = tempfile_dir();
    let mut b = match Browser::launch(&work) {
        Ok(b) => b,
        Err(Error::NotInstalled(m)) => {
            moat_testkit::skip(&format!(
                "chromium: {m} (scripts/deps.d/75-chromium.sh installs it)"
            ));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let port = serve();
    let base = format!("http://127.0.0.1:{port}");

    let log = b.navigate(&format!("{base}/")).expect("load /");
    assert_eq!(log.status, Some(200));
    assert!(log.console_errors.is_empty(), "{:?}", log.console_errors);
    assert!(log.failed_requests.is_empty(), "{:?}", log.failed_requests);
    assert!(log.bytes() > 0);
    assert_eq!(b.text("#h").expect("text").as_deref(), Some("Hello <b>"));
    assert_eq!(b.count("h1 b").expect("count"), 0, "escaped markup is text");

    let log = b.click_and_wait("#go").expect("click");
    assert!(log.failed_requests.is_empty(), "{:?}", log.failed_requests);
    assert!(b.url().expect("url").ends_with("/two"));
    assert_eq!(b.texts("p.x").expect("texts"), vec!["a", "b"]);

    let log = b.navigate(&format!("{base}/bad")).expect("load /bad");
    let errs = log.console_errors.join("\n");
    assert!(errs.contains("boom"), "{errs}");
    assert!(errs.contains("uncaught"), "{errs}");
    assert!(errs.contains("Content Security Policy"), "{errs}");
    assert!(
        log.failed_requests
            .iter()
            .any(|f| f.starts_with("404 ") && f.ends_with("/missing.png")),
        "{:?}",
        log.failed_requests
    );
    assert_eq!(b.eval("typeof window.inline").expect("eval"), "undefined");

    b.set_viewport(390, 844, true).expect("viewport");
    let png = work.join("shot.png");
    b.screenshot(&png, false).expect("screenshot");
    assert_eq!(png_size(&png), Some((390, 844)));
    drop(b);
    let _ = std::fs::remove_dir_all(&work);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("moat-chromium-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
