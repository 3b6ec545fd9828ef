//! A small WebDriver client for the browser tests: starts the system's ChromeDriver on a
//! free loopback port and drives headless Chromium through the W3C WebDriver protocol
//! (plain JSON over HTTP, so no extra crate is needed).
//!
//! Never skipped silently: without Chromium and ChromeDriver the tests fail and say how
//! to install them (`.ci/run` does).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C name of an element reference in answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a 1366×768 window (the counter
    /// screen the UI is made for).
    pub fn start() -> Browser {
        let driver_path = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver not found: install it with `apt-get install -y chromium chromium-driver` (.ci/run does)")
        });
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| {
                panic!("chromium not found: install it with `apt-get install -y chromium chromium-driver` (.ci/run does)")
            });
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("addr").port()
        };
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(&format!("{base}/status")).call().is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start on {base}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
        };
        let answer = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_str().expect("UTF-8 path"),
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1366,768",
                             "--lang=zh-CN", "--no-first-run", "--no-default-browser-check"]
                }
            }}}),
        );
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver made no session: {answer}"))
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|(status, value)| panic!("{method} {path} answered {status}: {value}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, (u16, Value)> {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.http.get(&url).call(),
            "DELETE" => self.http.delete(&url).call(),
            _ => self.http.post(&url).send_json(&body),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let value: Value = response.body_mut().read_json().unwrap_or(Value::Null);
        if status < 400 {
            Ok(value["value"].clone())
        } else {
            Err((status, value))
        }
    }

    /// The texts of the elements matching `css` once `ready` accepts them, waiting (up to
    /// ten seconds) for the page a click or a submit loads; panics with what it last saw.
    pub fn wait_texts(&self, css: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = Vec::new();
        while Instant::now() < deadline {
            if let Ok(texts) = self.try_texts(css) {
                if ready(&texts) {
                    return texts;
                }
                last = texts;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "waited for {css}; last saw {last:?} on {}",
            self.current_url()
        );
    }

    /// The text of the first element matching `css` once `ready` accepts it.
    pub fn wait_text(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_texts(css, |texts| texts.first().is_some_and(|t| ready(t)))
            .remove(0)
    }

    fn try_texts(&self, css: &str) -> Result<Vec<String>, (u16, Value)> {
        let path = format!("/session/{}", self.session);
        let list = self.try_call(
            "POST",
            &format!("{path}/elements"),
            json!({"using": "css selector", "value": css}),
        )?;
        let mut texts = Vec::new();
        for id in list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str())
        {
            let text = self.try_call("GET", &format!("{path}/element/{id}/text"), Value::Null)?;
            texts.push(text.as_str().unwrap_or_default().to_string());
        }
        Ok(texts)
    }

    fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    /// Resizes the window, e.g. to a phone's 390×844 for the applicants' pages.
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.session_call(
            "POST",
            "/window/rect",
            json!({ "width": width, "height": height }),
        );
    }

    /// Runs a script in the page (through WebDriver, not one of the node's own scripts)
    /// and returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    pub fn current_url(&self) -> String {
        self.session_call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Presses `keys` one after another into whatever has the focus, as a person at the
    /// keyboard would (WebDriver's codes name special keys: `\u{E004}` Tab, `\u{E007}`
    /// Enter).
    pub fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                let key = c.to_string();
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        self.session_call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// The `id` of the element that has the focus (empty when it has none).
    pub fn focused_id(&self) -> String {
        self.eval("return document.activeElement ? document.activeElement.id : '';")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Element<'_> {
        let value = self.session_call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        Element {
            browser: self,
            id: value[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}"))
                .to_string(),
        }
    }

    /// Every element matching a CSS selector (empty when none).
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let list = self.session_call(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        );
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str())
            .map(|id| Element {
                browser: self,
                id: id.to_string(),
            })
            .collect()
    }

    /// The value of the browser's cookie `name` for the current page's site, so a test
    /// can fetch a download with the browser's own session.
    pub fn cookie(&self, name: &str) -> String {
        self.session_call("GET", &format!("/cookie/{name}"), Value::Null)["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no cookie {name}"))
            .to_string()
    }

    /// Saves a PNG of the page under `target/screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) {
        let data = self.session_call("GET", "/screenshot", Value::Null);
        let png = base64_decode(data.as_str().expect("a base64 screenshot"));
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.http.delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element of the current page.
#[derive(Debug)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    pub fn click(&self) {
        self.browser
            .session_call("POST", &format!("/element/{}/click", self.id), json!({}));
    }

    pub fn type_text(&self, text: &str) {
        self.browser.session_call(
            "POST",
            &format!("/element/{}/value", self.id),
            json!({ "text": text }),
        );
    }

    pub fn clear(&self) {
        self.browser
            .session_call("POST", &format!("/element/{}/clear", self.id), json!({}));
    }

    /// An attribute of the element (`href` of a link, say); empty when it has none.
    pub fn attribute(&self, name: &str) -> String {
        self.browser
            .session_call(
                "GET",
                &format!("/element/{}/attribute/{name}", self.id),
                Value::Null,
            )
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn text(&self) -> String {
        self.browser
            .session_call("GET", &format!("/element/{}/text", self.id), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Standard base64 (RFC 4648) to bytes; screenshots only.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("aGVsbG8="), b"hello");
        assert_eq!(super::base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    }
}
