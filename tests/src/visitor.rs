//! A browser-like HTTP client for the pages: cookies kept, redirects not followed; used
//! by the web tests and by process tests that read the admin page.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Node;

/// A browser-like HTTP visitor: keeps cookies, does not follow redirects.
#[derive(Debug)]
pub struct Visitor {
    pub http: ureq::Agent,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

/// Status, body and `Location` of an answer.
pub type Page = (u16, String, Option<String>);

impl Visitor {
    pub fn new(node: &Node) -> Visitor {
        Visitor {
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(20)))
                .build()
                .into(),
            base: node.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, response: &mut ureq::http::Response<ureq::Body>) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (status, body, location)
    }

    pub fn get(&mut self, path: &str) -> Page {
        let mut response = self
            .http
            .get(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .call()
            .unwrap();
        self.absorb(&mut response)
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut response = self
            .http
            .post(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .send_form(fields.iter().copied())
            .unwrap();
        self.absorb(&mut response)
    }

    /// Signs in through the form, as a browser would.
    pub fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let (status, form, _) = self.get("/signin");
        assert_eq!(status, 200);
        let csrf = hidden(&form, "csrf");
        self.post(
            "/signin",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ],
        )
    }

    pub fn session_csrf(&mut self) -> String {
        let (status, page, _) = self.get("/worklist");
        assert_eq!(status, 200, "signed in");
        hidden(&page, "csrf")
    }
}

/// The value of a hidden form field.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the form has the field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}
