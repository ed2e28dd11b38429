//! Process configuration, read once from the environment.
//!
//! [`Config::from_vars`] is pure: it takes the variables as a list of pairs, so tests feed it a
//! map and never touch the process environment. Every problem is collected and reported
//! together, by variable name; values never appear in errors or `Debug` output (secrets are
//! [`SecretString`]s).
//!
//! This module does not load `.env`: only the dev server and tests do that.

use std::{
    collections::HashMap,
    fmt,
    num::{NonZeroU32, NonZeroU64},
    time::Duration,
};

use axum::http::HeaderValue;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub const DEFAULT_NOUS_API_BASE_URL: &str = "https://inference-api.nousresearch.com/v1";
pub const DEFAULT_MODEL: &str = "Hermes-4-70B";
pub const DEFAULT_ALLOWED_MODELS: &str = "Hermes-4-405B,Hermes-4-70B";
/// Auth.js asks for at least 32 random bytes; a shorter HMAC key is guessable.
pub const MIN_AUTH_SECRET_BYTES: usize = 32;

/// One environment variable the service reads.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// `None` when the variable is required.
    pub default: Option<&'static str>,
    pub about: &'static str,
}

/// Every variable, in the order `.env.example` lists them.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "AUTH_SECRET",
        default: None,
        about: "HS256 / Auth.js secret, >= 32 bytes; comma-separated for rotation, the first signs",
    },
    Variable {
        name: "AUTH_SESSION_COOKIE",
        default: Some(""),
        about: "the frontend's Auth.js cookie name; an Auth.js token sent as a bearer is decoded for it alone; unset = either",
    },
    Variable {
        name: "REDIS_URL",
        default: None,
        about: "redis:// or rediss:// (TLS) URL of the store, or comma-separated URLs of Redis Cluster nodes (Vercel's KV_URL is used when REDIS_URL is unset)",
    },
    Variable {
        name: "REDIS_CA_CERT",
        default: Some(""),
        about: "rediss:// only: trust this CA alone (PEM text, or a path to a PEM file) instead of the public roots",
    },
    Variable {
        name: "REDIS_CLUSTER",
        default: Some(""),
        about: "1 = the URL names Redis Cluster nodes (any of them will do), 0 = one server; unset = Cluster when REDIS_URL lists several URLs",
    },
    Variable {
        name: "NOUS_API_KEY",
        default: None,
        about: "bearer key for the Nous inference API",
    },
    Variable {
        name: "NOUS_API_BASE_URL",
        default: Some(DEFAULT_NOUS_API_BASE_URL),
        about: "OpenAI-compatible base URL; chat goes to {base}/chat/completions",
    },
    Variable {
        name: "DEFAULT_MODEL",
        default: Some(DEFAULT_MODEL),
        about: "model used when a request names none; must be in ALLOWED_MODELS",
    },
    Variable {
        name: "ALLOWED_MODELS",
        default: Some(DEFAULT_ALLOWED_MODELS),
        about: "comma-separated models a request may ask for",
    },
    Variable {
        name: "FALLBACK_MODEL",
        default: Some(""),
        about: "model tried once when the requested one fails before its first token; unset = none",
    },
    Variable {
        name: "SYSTEM_PROMPT",
        default: Some(""),
        about: "system message prepended when the client sends none; unset = none",
    },
    Variable {
        name: "DEFAULT_REASONING",
        default: Some("0"),
        about: "1 = the model reasons before answering unless a request says otherwise (`reasoning`, `reasoning_effort`); 0 = only when a request asks",
    },
    Variable {
        name: "AUTO_TITLE",
        default: Some("1"),
        about: "1 = after a thread's first reply, the model writes its title (unless the user named it); 0 = titles come from the first message",
    },
    Variable {
        name: "TITLE_MODEL",
        default: Some(""),
        about: "model that writes titles; unset = DEFAULT_MODEL",
    },
    Variable {
        name: "MODEL_CONTEXT_TOKENS",
        default: Some(DEFAULT_MODEL_CONTEXT_TOKENS),
        about: "each model's context window in tokens (name=tokens, comma-separated); a conversation that does not fit is cut to fit, oldest turns first; a model not listed is not checked",
    },
    Variable {
        name: "CONTEXT_SUMMARY",
        default: Some("0"),
        about: "1 = cut turns are replaced by a summary the model wrote (kept on the thread, refreshed in the background)",
    },
    Variable {
        name: "RESPONSE_CACHE_TTL_SECS",
        default: Some("0"),
        about: "answer a temperature-0 request whose model input was answered before from the cache for this long; 0 = no cache",
    },
    Variable {
        name: "RESPONSE_CACHE_SCOPE",
        default: Some("user"),
        about: "user = cached answers are shared only within one user's requests; global = between identical inputs of any users",
    },
    Variable {
        name: "MAX_MESSAGES_PER_REQUEST",
        default: Some("200"),
        about: "most messages one chat request may carry",
    },
    Variable {
        name: "MAX_CONTENT_CHARS",
        default: Some("100000"),
        about: "longest message content, in characters",
    },
    Variable {
        name: "MAX_ATTACHMENT_TEXT_CHARS",
        default: Some("100000"),
        about: "a text attachment (text/*, JSON, CSV as a data URL) is given to the model up to this many characters",
    },
    Variable {
        name: "MAX_TOKENS_CAP",
        default: Some("8192"),
        about: "largest max_tokens a request may ask for",
    },
    Variable {
        name: "UPSTREAM_CONNECT_TIMEOUT_MS",
        default: Some("5000"),
        about: "give up connecting to the model API after this long (then 502)",
    },
    Variable {
        name: "UPSTREAM_TTFT_TIMEOUT_MS",
        default: Some("60000"),
        about: "give up waiting for the model's first token after this long (then 504)",
    },
    Variable {
        name: "CHAT_MAX_DURATION_MS",
        default: Some("290000"),
        about: "longest a reply may stream; keep it under the function's maxDuration",
    },
    Variable {
        name: "THREAD_TTL_DAYS",
        default: Some("90"),
        about: "days an untouched thread is kept; every write restarts the clock",
    },
    Variable {
        name: "REDIS_CONNECT_TIMEOUT_MS",
        default: Some("2000"),
        about: "give up connecting to Redis after this long (then 503 store_unavailable)",
    },
    Variable {
        name: "REDIS_RESPONSE_TIMEOUT_MS",
        default: Some("2000"),
        about: "give up waiting for a Redis reply after this long (then 503 store_unavailable)",
    },
    Variable {
        name: "MAX_BODY_BYTES",
        default: Some("4194304"),
        about: "largest accepted request body (larger gets 413); Vercel's own cap is 4.5 MB",
    },
    Variable {
        name: "MAX_IMPORT_BYTES",
        default: Some("67108864"),
        about: "largest accepted `POST /api/import` body (larger gets 413); a Vercel function still takes at most 4.5 MB",
    },
    Variable {
        name: "ALLOWED_ORIGIN",
        default: Some(""),
        about: "comma-separated origins (https://app.example.com) allowed cross-origin; unset = same-origin only",
    },
    Variable {
        name: "RATE_LIMIT_CHAT_PER_MIN",
        default: Some("20"),
        about: "chat turns per user per minute; 0 = no limit",
    },
    Variable {
        name: "RATE_LIMIT_CHAT_PER_DAY",
        default: Some("1000"),
        about: "chat turns per user per day; 0 = no limit",
    },
    Variable {
        name: "RATE_LIMIT_REQUESTS_PER_MIN",
        default: Some("600"),
        about: "other API requests per user per minute; 0 = no limit",
    },
    Variable {
        name: "RATE_LIMIT_PUBLIC_PER_MIN",
        default: Some("120"),
        about: "requests per client address per minute to the routes without credentials (health, shared links, the OpenAPI document); 0 = no limit",
    },
    Variable {
        name: "REQUEST_HEAD_TIMEOUT_MS",
        default: Some("10000"),
        about: "dev server: a request's head must arrive within this, or its connection is closed",
    },
    Variable {
        name: "REQUEST_BODY_TIMEOUT_MS",
        default: Some("30000"),
        about: "dev server: longest wait for the next piece of a request body (then 408)",
    },
    Variable {
        name: "DAILY_TOKEN_BUDGET",
        default: Some("0"),
        about: "prompt + completion tokens per user per UTC day; 0 = no budget",
    },
];

/// What is wrong with one variable. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub var: &'static str,
    pub reason: &'static str,
}

/// Every problem found in the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "`{}` {}", p.var, p.reason)?;
        }
        Ok(())
    }
}

/// The whole configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    pub auth: AuthConfig,
    pub redis: RedisConfig,
    pub store: StoreConfig,
    pub upstream: UpstreamConfig,
    pub chat: ChatConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Accepted secrets, newest first; the first one signs (rotation keeps older ones valid).
    pub secrets: Vec<SecretString>,
    /// The session cookie name (= key salt) of the frontend's Auth.js, when known. Auth.js's
    /// own `getToken` decodes a bearer token with its deployment's cookie name only.
    pub session_cookie: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The server's URL, or the seed nodes of a Cluster (the client learns the others from
    /// them). Never empty. Secret because managed Redis URLs carry the password.
    pub urls: Vec<SecretString>,
    /// The variable `urls` came from (`REDIS_URL`, or its alias `KV_URL`), so errors about
    /// them name what the operator actually set.
    pub url_var: &'static str,
    /// Whether `urls` are Redis Cluster nodes: the store then routes every command by its
    /// keys' slot.
    pub cluster: bool,
    /// The only CA a `rediss://` server certificate may chain to. `None`: the bundled public
    /// roots (Mozilla's, via webpki-roots), which is what managed Redis (Upstash, Vercel KV,
    /// Redis Cloud) needs.
    pub ca_cert: Option<CaCert>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Sliding lifetime of a thread's keys and of the user's index. Public so tests can use
    /// seconds instead of days.
    pub thread_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub api_key: SecretString,
    pub base_url: Url,
    pub default_model: String,
    pub allowed_models: Vec<String>,
    /// Tried once when the requested model fails before its first token.
    pub fallback_model: Option<String>,
    pub connect_timeout: Duration,
    /// Longest wait from sending the request to the first streamed chunk.
    pub ttft_timeout: Duration,
}

/// Limits and defaults of the chat endpoint.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    pub system_prompt: Option<String>,
    pub max_messages: usize,
    pub max_content_chars: usize,
    /// A text attachment is given to the model up to this many characters.
    pub max_attachment_text_chars: usize,
    pub max_tokens_cap: u32,
    /// A reply is cut (and stored as far as it got) after this long.
    pub max_duration: Duration,
    /// The model reasons (thinks before answering) unless a request says otherwise.
    pub default_reasoning: bool,
    /// The model writes a thread's title after its first reply.
    pub auto_title: bool,
    /// The model that writes titles (`DEFAULT_MODEL` when `None`).
    pub title_model: Option<String>,
    /// Context windows by model; a model not listed is not checked.
    pub context_tokens: Vec<(String, u32)>,
    /// Replace cut turns with a model-written summary.
    pub context_summary: bool,
    /// How long a temperature-0 answer may be served again; `None`: no cache.
    pub response_cache_ttl: Option<Duration>,
    pub response_cache_scope: CacheScope,
    /// How long a thread stays "generating" unless its generator renews it (every third of
    /// this): a crashed generator frees the thread after at most this long. Not an
    /// environment variable; tests shorten it.
    pub generation_lease: Duration,
    /// How long after a generation ended `GET /api/chat/:threadId/stream` still replays it
    /// (a client that reloads just as it ends still gets its end). Not an environment
    /// variable; tests shorten it.
    pub resume_grace: Duration,
}

/// Who shares cached answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    /// Each user's requests only.
    User,
    /// Identical inputs of any users (an answer never says who asked).
    Global,
}

/// Default of `MODEL_CONTEXT_TOKENS`: both Hermes-4 models have a 128 Ki-token window.
pub const DEFAULT_MODEL_CONTEXT_TOKENS: &str = "Hermes-4-405B=131072,Hermes-4-70B=131072";

impl ChatConfig {
    /// The context window of `model`, when known.
    pub fn context_window(&self, model: &str) -> Option<u32> {
        self.context_tokens
            .iter()
            .find(|(name, _)| name == model)
            .map(|&(_, tokens)| tokens)
    }
}

/// Default of [`ChatConfig::generation_lease`].
pub const DEFAULT_GENERATION_LEASE: Duration = Duration::from_secs(30);

/// Default of [`ChatConfig::resume_grace`].
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    /// Largest `POST /api/import` body.
    pub max_import_bytes: usize,
    /// Exact origins allowed to call cross-origin (with credentials). Empty: same-origin only.
    pub allowed_origins: Vec<HeaderValue>,
    /// A server of our own (the dev server) closes a connection whose request head takes
    /// longer (Vercel's edge does this for the functions).
    pub head_timeout: Duration,
    /// A server of our own answers 408 when a request body's next piece takes longer.
    pub body_timeout: Duration,
}

/// Per-user limits; `None` disables one.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub chat_per_minute: Option<NonZeroU32>,
    pub chat_per_day: Option<NonZeroU32>,
    pub requests_per_minute: Option<NonZeroU32>,
    /// Requests per client address per minute to the routes without credentials.
    pub public_per_minute: Option<NonZeroU32>,
    pub daily_token_budget: Option<NonZeroU64>,
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// As [`Config::from_vars`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Builds the configuration from `(name, value)` pairs. Empty values count as unset.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every variable that is missing, unparsable or out of range.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let mut r = Reader {
            vars,
            problems: Vec::new(),
        };

        let secrets = r.required("AUTH_SECRET", parse_secrets);
        let session_cookie = r.optional("AUTH_SESSION_COOKIE", parse_session_cookie);
        let (redis_url_var, redis_url) = r.redis_url();
        let ca_cert = r.optional("REDIS_CA_CERT", parse_ca_cert);
        let cluster = r.optional("REDIS_CLUSTER", parse_switch);
        let api_key = r.required("NOUS_API_KEY", |v| Ok(SecretString::from(v)));
        let base_url = r.optional("NOUS_API_BASE_URL", parse_http_url);
        let default_model = r.optional("DEFAULT_MODEL", |v| Ok(v.trim().to_owned()));
        let allowed_models = r.optional("ALLOWED_MODELS", parse_list);
        let ttl_days = r.optional("THREAD_TTL_DAYS", parse_positive);
        let connect_ms = r.optional("REDIS_CONNECT_TIMEOUT_MS", parse_positive);
        let response_ms = r.optional("REDIS_RESPONSE_TIMEOUT_MS", parse_positive);
        let max_body = r.optional("MAX_BODY_BYTES", parse_positive);
        let max_import = r.optional("MAX_IMPORT_BYTES", parse_positive);
        let allowed_origins = r.optional("ALLOWED_ORIGIN", parse_origins);
        let chat_per_minute = r.optional("RATE_LIMIT_CHAT_PER_MIN", parse_limit);
        let chat_per_day = r.optional("RATE_LIMIT_CHAT_PER_DAY", parse_limit);
        let requests_per_minute = r.optional("RATE_LIMIT_REQUESTS_PER_MIN", parse_limit);
        let public_per_minute = r.optional("RATE_LIMIT_PUBLIC_PER_MIN", parse_limit);
        let head_ms = r.optional("REQUEST_HEAD_TIMEOUT_MS", parse_positive);
        let body_ms = r.optional("REQUEST_BODY_TIMEOUT_MS", parse_positive);
        let token_budget = r.optional("DAILY_TOKEN_BUDGET", parse_budget);
        let fallback_model = r.optional("FALLBACK_MODEL", parse_maybe);
        let system_prompt = r.optional("SYSTEM_PROMPT", parse_maybe);
        let max_messages = r.optional("MAX_MESSAGES_PER_REQUEST", parse_positive);
        let max_content = r.optional("MAX_CONTENT_CHARS", parse_positive);
        let max_attachment_text = r.optional("MAX_ATTACHMENT_TEXT_CHARS", parse_positive);
        let max_tokens_cap = r.optional("MAX_TOKENS_CAP", parse_positive);
        let upstream_connect_ms = r.optional("UPSTREAM_CONNECT_TIMEOUT_MS", parse_positive);
        let ttft_ms = r.optional("UPSTREAM_TTFT_TIMEOUT_MS", parse_positive);
        let chat_max_ms = r.optional("CHAT_MAX_DURATION_MS", parse_positive);
        let default_reasoning = r.optional("DEFAULT_REASONING", parse_switch);
        let auto_title = r.optional("AUTO_TITLE", parse_switch);
        let title_model = r.optional("TITLE_MODEL", parse_maybe);
        let context_tokens = r.optional("MODEL_CONTEXT_TOKENS", parse_context_tokens);
        let context_summary = r.optional("CONTEXT_SUMMARY", parse_switch);
        let cache_ttl = r.optional("RESPONSE_CACHE_TTL_SECS", parse_whole);
        let cache_scope = r.optional("RESPONSE_CACHE_SCOPE", parse_cache_scope);

        // A CA with a plain URL would silently not be used: the connection would not be TLS.
        if let (Some(urls), Some(Some(_))) = (&redis_url, &ca_cert)
            && !urls[0].expose_secret().starts_with("rediss://")
        {
            r.problem(
                "REDIS_CA_CERT",
                "is set, but the Redis URL is not rediss://",
            );
        }
        let several = redis_url.as_ref().is_some_and(|urls| urls.len() > 1);
        if cluster == Some(Some(false)) && several {
            r.problem(
                "REDIS_CLUSTER",
                "is 0, but the Redis URL lists several nodes (only a Cluster has several)",
            );
        }
        let cluster = cluster.map(|explicit| explicit.unwrap_or(several));
        if let (Some(true), Some(urls)) = (cluster, &redis_url)
            && urls.iter().any(|url| names_a_database(url.expose_secret()))
        {
            r.problem(
                redis_url_var,
                "names a database other than 0, which a Redis Cluster does not have",
            );
        }
        if let (Some(default), Some(allowed)) = (&default_model, &allowed_models)
            && !allowed.contains(default)
        {
            r.problem("DEFAULT_MODEL", "must be one of ALLOWED_MODELS");
        }

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        // Every value parsed (no problem was recorded), so every `Option` is `Some`.
        let built = (|| {
            Some(Config {
                auth: AuthConfig {
                    secrets: secrets?,
                    session_cookie: session_cookie?,
                },
                redis: RedisConfig {
                    urls: redis_url?,
                    url_var: redis_url_var,
                    cluster: cluster?,
                    ca_cert: ca_cert?,
                    connect_timeout: millis(connect_ms?),
                    response_timeout: millis(response_ms?),
                },
                store: StoreConfig {
                    thread_ttl: Duration::from_secs(ttl_days?.get().saturating_mul(86_400)),
                },
                upstream: UpstreamConfig {
                    api_key: api_key?,
                    base_url: base_url?,
                    default_model: default_model?,
                    allowed_models: allowed_models?,
                    fallback_model: fallback_model?,
                    connect_timeout: millis(upstream_connect_ms?),
                    ttft_timeout: millis(ttft_ms?),
                },
                chat: ChatConfig {
                    system_prompt: system_prompt?,
                    max_messages: saturating_usize(max_messages?),
                    max_content_chars: saturating_usize(max_content?),
                    max_attachment_text_chars: saturating_usize(max_attachment_text?),
                    max_tokens_cap: u32::try_from(max_tokens_cap?.get()).unwrap_or(u32::MAX),
                    max_duration: millis(chat_max_ms?),
                    default_reasoning: default_reasoning?.unwrap_or(false),
                    auto_title: auto_title?.unwrap_or(true),
                    title_model: title_model?,
                    context_tokens: context_tokens?,
                    context_summary: context_summary?.unwrap_or(false),
                    response_cache_ttl: Some(cache_ttl?)
                        .filter(|&secs| secs > 0)
                        .map(Duration::from_secs),
                    response_cache_scope: cache_scope?,
                    generation_lease: DEFAULT_GENERATION_LEASE,
                    resume_grace: DEFAULT_RESUME_GRACE,
                },
                http: HttpConfig {
                    max_body_bytes: saturating_usize(max_body?),
                    max_import_bytes: saturating_usize(max_import?),
                    allowed_origins: allowed_origins?,
                    head_timeout: millis(head_ms?),
                    body_timeout: millis(body_ms?),
                },
                limits: LimitsConfig {
                    chat_per_minute: chat_per_minute?,
                    chat_per_day: chat_per_day?,
                    requests_per_minute: requests_per_minute?,
                    public_per_minute: public_per_minute?,
                    daily_token_budget: token_budget?,
                },
            })
        })();
        built.ok_or_else(|| ConfigError {
            problems: Vec::new(),
        })
    }
}

fn millis(ms: NonZeroU64) -> Duration {
    Duration::from_millis(ms.get())
}

fn saturating_usize(n: NonZeroU64) -> usize {
    usize::try_from(n.get()).unwrap_or(usize::MAX)
}

/// PEM certificates of a private CA, checked to hold at least one valid certificate. Public
/// data, but `Debug` shows only the size, to keep config dumps short.
#[derive(Clone, PartialEq, Eq)]
pub struct CaCert(Vec<u8>);

impl CaCert {
    /// Checks that `pem` holds at least one certificate that can be a trust anchor.
    ///
    /// # Errors
    /// A reason (never the text itself) when `pem` holds no certificate or a broken one.
    pub fn from_pem(pem: Vec<u8>) -> Result<Self, &'static str> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| "holds invalid PEM")?;
            roots
                .add(cert)
                .map_err(|_| "holds a certificate that is not a valid CA certificate")?;
        }
        if roots.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
        Ok(Self(pem))
    }

    pub fn pem(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for CaCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaCert({} bytes of PEM)", self.0.len())
    }
}

impl RedisConfig {
    /// The client for a single server at the first URL (it does not connect). With a
    /// [`CaCert`], a `rediss://` connection trusts that CA alone.
    ///
    /// # Errors
    /// When the URL or the CA cannot be used; `from_vars` already checked both, so this is not
    /// expected.
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        self.node_client(0)
    }

    /// A client for the `n`th URL (counting round, so any `n` names one): a plain
    /// connection to one server or one Cluster node, for what is not routed by key (the
    /// control channel's subscription).
    ///
    /// # Errors
    /// As [`RedisConfig::client`].
    pub fn node_client(&self, n: usize) -> redis::RedisResult<redis::Client> {
        install_crypto_provider();
        let url = self
            .urls
            .get(n % self.urls.len().max(1))
            .map_or("", |u| u.expose_secret());
        let info =
            redis::IntoConnectionInfo::into_connection_info(url)?.set_tcp_settings(tcp_settings());
        match self.tls_certificates() {
            None => redis::Client::open(info),
            Some(certs) => redis::Client::build_with_tls(info, certs),
        }
    }

    /// The client for a Redis Cluster seeded with every URL (it does not connect), with the
    /// connect timeout and the CA of this configuration. Each command's reply, redirections
    /// and reconnections included, is bounded by `response_timeout` (`None`: unbounded, for
    /// blocking reads).
    ///
    /// # Errors
    /// When the URLs or the CA cannot be used; `from_vars` already checked them, so this is not
    /// expected.
    pub fn cluster_client(
        &self,
        response_timeout: Option<Duration>,
    ) -> redis::RedisResult<redis::cluster::ClusterClient> {
        install_crypto_provider();
        let urls = self.urls.iter().map(|u| u.expose_secret());
        let mut builder = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(self.connect_timeout)
            .overall_response_timeout(response_timeout)
            .tcp_settings(tcp_settings());
        if let Some(timeout) = response_timeout {
            builder = builder.response_timeout(timeout);
        }
        if let Some(certs) = self.tls_certificates() {
            builder = builder.certs(certs);
        }
        builder.build()
    }

    fn tls_certificates(&self) -> Option<redis::TlsCertificates> {
        self.ca_cert.as_ref().map(|ca| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.pem().to_vec()),
        })
    }
}

/// Every Redis connection sends at once (`TCP_NODELAY`; the client's default is to wait): with
/// Nagle's algorithm a command written while an earlier one's reply is outstanding waits for
/// that reply, a round trip that on a remote Redis (Upstash from a function) is added to the
/// concurrent turns' latency.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

/// rustls needs a process-wide crypto provider. It picks `ring` on its own while `ring` is the
/// only one compiled in, but a dependency enabling aws-lc-rs as well would make that a panic
/// at the first TLS connection. Installing fails harmlessly when some provider (ours from an
/// earlier call, or the embedder's) is already in place.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Walks the variables, remembering every problem.
struct Reader {
    vars: HashMap<String, String>,
    problems: Vec<ConfigProblem>,
}

impl Reader {
    fn problem(&mut self, var: &'static str, reason: &'static str) {
        self.problems.push(ConfigProblem { var, reason });
    }

    fn required<T>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Option<T> {
        match self.vars.get(var).map(|v| parse(v)) {
            Some(Ok(value)) => Some(value),
            Some(Err(reason)) => {
                self.problem(var, reason);
                None
            }
            None => {
                self.problem(var, "is required");
                None
            }
        }
    }

    /// Parses `var`, or its default from [`VARIABLES`] when unset.
    fn optional<T>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Option<T> {
        let default = VARIABLES
            .iter()
            .find(|v| v.name == var)
            .and_then(|v| v.default)
            .unwrap_or_default();
        let raw = self.vars.get(var).map_or(default, String::as_str);
        match parse(raw) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.problem(var, reason);
                None
            }
        }
    }

    /// `REDIS_URL`, or Vercel KV's `KV_URL` when `REDIS_URL` is unset (the Vercel KV and
    /// Upstash integrations set only `KV_URL`). A problem is reported under the name the value
    /// came from.
    fn redis_url(&mut self) -> (&'static str, Option<Vec<SecretString>>) {
        let var = if self.vars.contains_key("REDIS_URL") || !self.vars.contains_key("KV_URL") {
            "REDIS_URL"
        } else {
            "KV_URL"
        };
        (var, self.required(var, parse_redis_urls))
    }
}

fn parse_secrets(raw: &str) -> Result<Vec<SecretString>, &'static str> {
    let secrets: Vec<&str> = raw.split(',').map(str::trim).collect();
    if secrets.iter().any(|s| s.len() < MIN_AUTH_SECRET_BYTES) {
        return Err("must be at least 32 bytes (each, when comma-separated)");
    }
    Ok(secrets.into_iter().map(SecretString::from).collect())
}

/// One URL, or several comma-separated ones (the seed nodes of a Cluster). Several must agree
/// on TLS, credentials and database, as one cluster client uses the same for every node.
fn parse_redis_urls(raw: &str) -> Result<Vec<SecretString>, &'static str> {
    let urls: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if urls.is_empty() {
        return Err("lists no URL");
    }
    let parsed = urls
        .iter()
        .map(|url| parse_redis_url(url))
        .collect::<Result<Vec<_>, _>>()?;
    if urls.len() > 1 {
        if urls.iter().any(|u| u.starts_with("rediss://"))
            && urls.iter().any(|u| u.starts_with("redis://"))
        {
            return Err("mixes redis:// and rediss:// URLs");
        }
        redis::cluster::ClusterClient::new(urls.clone())
            .map_err(|_| "lists nodes with different passwords, users or databases")?;
    }
    Ok(parsed)
}

/// Whether a (valid) Redis URL selects a database other than 0.
fn names_a_database(url: &str) -> bool {
    use redis::IntoConnectionInfo;
    url.into_connection_info()
        .is_ok_and(|info| info.redis_settings().db() != 0)
}

fn parse_redis_url(raw: &str) -> Result<SecretString, &'static str> {
    let url = Url::parse(raw.trim()).map_err(|_| "is not a valid URL")?;
    match url.scheme() {
        "redis" | "rediss" => {}
        _ => return Err("must be a redis:// or rediss:// URL"),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    redis::Client::open(raw.trim()).map_err(|_| "is not a valid Redis URL")?;
    Ok(SecretString::from(raw.trim()))
}

/// PEM text when it looks like PEM, otherwise a path to a PEM file: a path is handier in a
/// shell or `.env`, while hosting dashboards (Vercel) take the certificate text directly.
fn parse_ca_cert(raw: &str) -> Result<Option<CaCert>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let pem = if raw.starts_with("-----BEGIN") {
        // Single-line env values often carry the newlines as literal `\n`.
        if raw.contains('\n') {
            raw.as_bytes().to_vec()
        } else {
            raw.replace("\\n", "\n").into_bytes()
        }
    } else {
        std::fs::read(raw).map_err(|_| "is neither PEM text nor the path of a readable PEM file")?
    };
    CaCert::from_pem(pem).map(Some)
}

fn parse_http_url(raw: &str) -> Result<Url, &'static str> {
    let url = Url::parse(raw.trim()).map_err(|_| "is not a valid URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL");
    }
    Ok(url)
}

fn parse_list(raw: &str) -> Result<Vec<String>, &'static str> {
    let items: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err("must list at least one name");
    }
    Ok(items)
}

fn parse_session_cookie(raw: &str) -> Result<Option<&'static str>, &'static str> {
    use crate::auth::authjs::{
        SECURE_SESSION_COOKIE, SESSION_COOKIE, V4_SECURE_SESSION_COOKIE, V4_SESSION_COOKIE,
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    [
        SESSION_COOKIE,
        SECURE_SESSION_COOKIE,
        V4_SESSION_COOKIE,
        V4_SECURE_SESSION_COOKIE,
    ]
    .into_iter()
    .find(|name| *name == raw)
    .map(Some)
    .ok_or("must be an Auth.js session cookie name, e.g. __Secure-authjs.session-token")
}

/// A limit: a whole number, `0` for none.
fn parse_limit(raw: &str) -> Result<Option<NonZeroU32>, &'static str> {
    raw.trim()
        .parse::<u32>()
        .map(NonZeroU32::new)
        .map_err(|_| "must be a whole number (0 for no limit)")
}

fn parse_budget(raw: &str) -> Result<Option<NonZeroU64>, &'static str> {
    raw.trim()
        .parse::<u64>()
        .map(NonZeroU64::new)
        .map_err(|_| "must be a whole number (0 for no budget)")
}

/// `https://app.example.com,http://localhost:5173`: scheme, host and optional port, exactly
/// as browsers send them in `Origin` (no path, no trailing slash).
fn parse_origins(raw: &str) -> Result<Vec<HeaderValue>, &'static str> {
    const BAD: &str = "must list origins like https://app.example.com (scheme and host, no path)";
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|origin| {
            let url = Url::parse(origin).map_err(|_| BAD)?;
            let exact = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https") || exact != origin {
                return Err(BAD);
            }
            HeaderValue::from_str(origin).map_err(|_| BAD)
        })
        .collect()
}

/// An optional on/off switch: `None` when unset.
fn parse_switch(raw: &str) -> Result<Option<bool>, &'static str> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err("must be 1 or 0"),
    }
}

/// An optional free-text value: `None` when empty.
fn parse_maybe(raw: &str) -> Result<Option<String>, &'static str> {
    let trimmed = raw.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// `name=tokens,…`: each model's context window.
fn parse_context_tokens(raw: &str) -> Result<Vec<(String, u32)>, &'static str> {
    const REASON: &str = "must be model=tokens pairs, comma-separated (tokens a positive number)";
    raw.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, tokens) = pair.split_once('=').ok_or(REASON)?;
            let tokens: u32 = tokens.trim().parse().map_err(|_| REASON)?;
            if name.trim().is_empty() || tokens == 0 {
                return Err(REASON);
            }
            Ok((name.trim().to_owned(), tokens))
        })
        .collect()
}

/// A whole number, zero allowed.
fn parse_whole(raw: &str) -> Result<u64, &'static str> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| "must be a whole number (0 or more)")
}

fn parse_cache_scope(raw: &str) -> Result<CacheScope, &'static str> {
    match raw.trim() {
        "" | "user" => Ok(CacheScope::User),
        "global" => Ok(CacheScope::Global),
        _ => Err("must be `user` or `global`"),
    }
}

fn parse_positive(raw: &str) -> Result<NonZeroU64, &'static str> {
    raw.trim()
        .parse::<NonZeroU64>()
        .map_err(|_| "must be a positive whole number")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "dev-secret-please-change-0123456789abcdef";

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn minimal() -> Vec<(String, String)> {
        vars(&[
            ("AUTH_SECRET", SECRET),
            ("REDIS_URL", "redis://127.0.0.1:6390"),
            ("NOUS_API_KEY", "sk-test"),
        ])
    }

    fn problem_vars(err: &ConfigError) -> Vec<&'static str> {
        err.problems.iter().map(|p| p.var).collect()
    }

    #[test]
    fn context_windows_and_the_cache_are_read_and_checked() {
        let config = Config::from_vars(minimal().into_iter().chain([
            (
                "MODEL_CONTEXT_TOKENS".to_owned(),
                "a=100, b=2000".to_owned(),
            ),
            ("CONTEXT_SUMMARY".to_owned(), "1".to_owned()),
            ("RESPONSE_CACHE_TTL_SECS".to_owned(), "60".to_owned()),
            ("RESPONSE_CACHE_SCOPE".to_owned(), "global".to_owned()),
        ]))
        .unwrap();
        assert_eq!(config.chat.context_window("b"), Some(2000));
        assert_eq!(config.chat.context_window("c"), None);
        assert!(config.chat.context_summary);
        assert_eq!(
            config.chat.response_cache_ttl,
            Some(Duration::from_secs(60))
        );
        assert_eq!(config.chat.response_cache_scope, CacheScope::Global);
        let defaults = Config::from_vars(minimal()).unwrap();
        assert_eq!(defaults.chat.context_window("Hermes-4-70B"), Some(131_072));
        assert_eq!(defaults.chat.response_cache_ttl, None);
        for (name, value) in [
            ("MODEL_CONTEXT_TOKENS", "a=0"),
            ("MODEL_CONTEXT_TOKENS", "a"),
            ("RESPONSE_CACHE_SCOPE", "team"),
            ("RESPONSE_CACHE_TTL_SECS", "-1"),
        ] {
            let err = Config::from_vars(
                minimal()
                    .into_iter()
                    .chain([(name.to_owned(), value.to_owned())]),
            )
            .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn an_empty_environment_names_every_required_variable() {
        let err = Config::from_vars(Vec::new()).unwrap_err();
        assert_eq!(
            problem_vars(&err),
            ["AUTH_SECRET", "REDIS_URL", "NOUS_API_KEY"]
        );
        let text = err.to_string();
        for name in ["AUTH_SECRET", "REDIS_URL", "NOUS_API_KEY"] {
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn the_minimal_environment_gets_the_documented_defaults() {
        let config = Config::from_vars(minimal()).unwrap();
        assert_eq!(config.store.thread_ttl, Duration::from_secs(90 * 86_400));
        assert_eq!(config.upstream.default_model, "Hermes-4-70B");
        assert_eq!(
            config.upstream.allowed_models,
            ["Hermes-4-405B", "Hermes-4-70B"]
        );
        assert_eq!(config.upstream.base_url.as_str(), DEFAULT_NOUS_API_BASE_URL);
        assert_eq!(config.redis.connect_timeout, Duration::from_millis(2000));
        assert_eq!(config.http.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(config.http.max_import_bytes, 64 * 1024 * 1024);
        assert_eq!(config.upstream.fallback_model, None);
        assert_eq!(config.upstream.ttft_timeout, Duration::from_secs(60));
        assert_eq!(config.chat.system_prompt, None);
        assert_eq!(config.chat.max_messages, 200);
        assert_eq!(config.chat.max_tokens_cap, 8192);
        assert_eq!(config.chat.max_duration, Duration::from_millis(290_000));
        assert!(config.http.allowed_origins.is_empty());
        assert_eq!(config.limits.chat_per_minute.map(NonZeroU32::get), Some(20));
        assert_eq!(config.limits.daily_token_budget, None);
        assert_eq!(config.auth.secrets.len(), 1);
    }

    #[test]
    fn every_invalid_value_is_reported_by_name_and_never_echoed() {
        let mut env = vars(&[
            ("AUTH_SECRET", "short-secret-value"),
            ("REDIS_URL", "http://example.com"),
            ("NOUS_API_KEY", "sk-test"),
            ("NOUS_API_BASE_URL", "ftp://nope-value"),
            ("THREAD_TTL_DAYS", "0"),
            ("REDIS_CONNECT_TIMEOUT_MS", "soon"),
            ("REDIS_RESPONSE_TIMEOUT_MS", "-5"),
            ("MAX_BODY_BYTES", "lots"),
            ("ALLOWED_MODELS", " , "),
        ]);
        env.push(("DEFAULT_MODEL".into(), "gpt-4".into()));
        let err = Config::from_vars(env).unwrap_err();
        assert_eq!(
            problem_vars(&err),
            [
                "AUTH_SECRET",
                "REDIS_URL",
                "NOUS_API_BASE_URL",
                "ALLOWED_MODELS",
                "THREAD_TTL_DAYS",
                "REDIS_CONNECT_TIMEOUT_MS",
                "REDIS_RESPONSE_TIMEOUT_MS",
                "MAX_BODY_BYTES",
            ]
        );
        let text = format!("{err} {err:?}");
        for value in [
            "short-secret-value",
            "example.com",
            "nope-value",
            "soon",
            "lots",
        ] {
            assert!(!text.contains(value), "value {value:?} leaked: {text}");
        }
    }

    #[test]
    fn origins_must_be_exact_and_limits_may_be_off() {
        let mut env = minimal();
        env.push((
            "ALLOWED_ORIGIN".into(),
            "https://app.example.com, http://localhost:5173".into(),
        ));
        env.push(("RATE_LIMIT_CHAT_PER_MIN".into(), "0".into()));
        let config = Config::from_vars(env).unwrap();
        assert_eq!(config.http.allowed_origins.len(), 2);
        assert_eq!(config.limits.chat_per_minute, None);
        for bad in [
            "https://app.example.com/",
            "app.example.com",
            "https://x.com/path",
            "ftp://x.com",
        ] {
            let mut env = minimal();
            env.push(("ALLOWED_ORIGIN".into(), bad.into()));
            let err = Config::from_vars(env).unwrap_err();
            assert_eq!(problem_vars(&err), ["ALLOWED_ORIGIN"], "case {bad:?}");
        }
    }

    #[test]
    fn the_default_model_must_be_allowed() {
        let mut env = minimal();
        env.push(("DEFAULT_MODEL".into(), "gpt-4".into()));
        let err = Config::from_vars(env).unwrap_err();
        assert_eq!(problem_vars(&err), ["DEFAULT_MODEL"]);
    }

    #[test]
    fn kv_url_stands_in_for_redis_url() {
        let env = vars(&[
            ("AUTH_SECRET", SECRET),
            ("KV_URL", "redis://default:pw@127.0.0.1:6390"),
            ("NOUS_API_KEY", "sk-test"),
        ]);
        let config = Config::from_vars(env).unwrap();
        assert_eq!(
            config.redis.urls[0].expose_secret(),
            "redis://default:pw@127.0.0.1:6390"
        );
        let env = vars(&[
            ("AUTH_SECRET", SECRET),
            ("KV_URL", "not a url"),
            ("NOUS_API_KEY", "sk-test"),
        ]);
        assert_eq!(
            problem_vars(&Config::from_vars(env).unwrap_err()),
            ["KV_URL"]
        );
    }

    fn with(mut env: Vec<(String, String)>, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        env.retain(|(k, _)| !pairs.iter().any(|(name, _)| k == name));
        env.extend(vars(pairs));
        env
    }

    fn test_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn rediss_urls_are_accepted_and_use_the_public_roots_by_default() {
        let url = "rediss://default:pw@example.upstash.io:6379";
        let config =
            Config::from_vars(with(minimal(), &[("KV_URL", url), ("REDIS_URL", "")])).unwrap();
        assert_eq!(config.redis.urls[0].expose_secret(), url);
        assert_eq!(config.redis.ca_cert, None);
        config.redis.client().unwrap();
    }

    #[test]
    fn redis_connections_send_at_once() {
        let pem = test_ca_pem();
        for env in [
            with(minimal(), &[("REDIS_URL", "redis://127.0.0.1:6390")]),
            with(
                minimal(),
                &[
                    ("REDIS_URL", "rediss://127.0.0.1:6390"),
                    ("REDIS_CA_CERT", &pem),
                ],
            ),
        ] {
            let config = Config::from_vars(env).unwrap();
            for client in [config.redis.client(), config.redis.node_client(1)] {
                assert!(
                    client
                        .unwrap()
                        .get_connection_info()
                        .tcp_settings()
                        .nodelay()
                );
            }
        }
    }

    #[test]
    fn the_ca_cert_is_taken_as_pem_text_or_as_a_path() {
        let pem = test_ca_pem();
        let url = ("REDIS_URL", "rediss://127.0.0.1:6390");
        let from_text =
            Config::from_vars(with(minimal(), &[url, ("REDIS_CA_CERT", &pem)])).unwrap();
        assert_eq!(
            from_text.redis.ca_cert.as_ref().unwrap().pem(),
            pem.trim().as_bytes()
        );
        from_text.redis.client().unwrap();
        assert!(!format!("{from_text:?}").contains("BEGIN"));

        let one_line = pem.trim_end().replace('\n', "\\n");
        let from_escaped =
            Config::from_vars(with(minimal(), &[url, ("REDIS_CA_CERT", &one_line)])).unwrap();
        assert!(from_escaped.redis.ca_cert.is_some());

        let path = std::env::temp_dir().join(format!("buddahbot-ca-{}.pem", std::process::id()));
        std::fs::write(&path, &pem).unwrap();
        let from_path = Config::from_vars(with(
            minimal(),
            &[url, ("REDIS_CA_CERT", path.to_str().unwrap())],
        ));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            from_path.unwrap().redis.ca_cert.unwrap().pem(),
            pem.as_bytes()
        );
    }

    #[test]
    fn a_bad_ca_cert_is_reported_by_name_and_never_echoed() {
        let url = ("REDIS_URL", "rediss://127.0.0.1:6390");
        let broken = "-----BEGIN CERTIFICATE-----\nbm90LWEtY2VydA==\n-----END CERTIFICATE-----\n";
        for bad in [
            "/no/such/ca-file.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
            broken,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err =
                Config::from_vars(with(minimal(), &[url, ("REDIS_CA_CERT", bad)])).unwrap_err();
            assert_eq!(problem_vars(&err), ["REDIS_CA_CERT"], "case {bad:?}");
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains("no/such") && !text.contains("bm90"),
                "{text}"
            );
        }
        // With a plain URL the CA would never be used: say so rather than connect without TLS.
        let err =
            Config::from_vars(with(minimal(), &[("REDIS_CA_CERT", &test_ca_pem())])).unwrap_err();
        assert_eq!(problem_vars(&err), ["REDIS_CA_CERT"]);
    }

    #[test]
    fn cluster_mode_comes_from_the_switch_or_from_several_urls() {
        let single = Config::from_vars(minimal()).unwrap();
        assert!(!single.redis.cluster);
        assert_eq!(single.redis.urls.len(), 1);

        let switched = Config::from_vars(with(minimal(), &[("REDIS_CLUSTER", "1")])).unwrap();
        assert!(switched.redis.cluster);
        switched.redis.cluster_client(None).unwrap();

        let nodes =
            "redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7000,redis://:pw@10.0.0.3:7000";
        let several = Config::from_vars(with(minimal(), &[("REDIS_URL", nodes)])).unwrap();
        assert!(several.redis.cluster);
        let urls: Vec<&str> = several
            .redis
            .urls
            .iter()
            .map(|u| u.expose_secret())
            .collect();
        assert_eq!(
            urls,
            [
                "redis://:pw@10.0.0.1:7000",
                "redis://:pw@10.0.0.2:7000",
                "redis://:pw@10.0.0.3:7000"
            ]
        );
        several
            .redis
            .cluster_client(Some(Duration::from_secs(1)))
            .unwrap();

        let off = Config::from_vars(with(minimal(), &[("REDIS_CLUSTER", "no")])).unwrap();
        assert!(!off.redis.cluster);
    }

    #[test]
    fn cluster_settings_that_cannot_work_are_reported_by_name_and_never_echoed() {
        let two = "redis://:pw@10.0.0.1:7000,redis://:pw@10.0.0.2:7000";
        for (case, pairs, expected) in [
            (
                "switched off with several nodes",
                vec![("REDIS_URL", two), ("REDIS_CLUSTER", "0")],
                "REDIS_CLUSTER",
            ),
            (
                "not a switch",
                vec![("REDIS_CLUSTER", "cluster-please")],
                "REDIS_CLUSTER",
            ),
            (
                "one node is not a URL",
                vec![("REDIS_URL", "redis://:pw@10.0.0.1:7000,nope-value")],
                "REDIS_URL",
            ),
            (
                "mixed TLS",
                vec![(
                    "REDIS_URL",
                    "rediss://:pw@10.0.0.1:7000,redis://:pw@10.0.0.2:7000",
                )],
                "REDIS_URL",
            ),
            (
                "different passwords",
                vec![(
                    "REDIS_URL",
                    "redis://:pw@10.0.0.1:7000,redis://:other-pw@10.0.0.2:7000",
                )],
                "REDIS_URL",
            ),
            (
                "a database other than 0",
                vec![
                    ("REDIS_URL", "redis://:pw@10.0.0.1:7000/2"),
                    ("REDIS_CLUSTER", "1"),
                ],
                "REDIS_URL",
            ),
            (
                "no URL at all",
                vec![("KV_URL", " , "), ("REDIS_URL", "")],
                "KV_URL",
            ),
        ] {
            let err = Config::from_vars(with(minimal(), &pairs)).unwrap_err();
            assert_eq!(problem_vars(&err), [expected], "case {case:?}");
            let text = format!("{err} {err:?}");
            for value in ["10.0.0", "nope-value", "other-pw", "cluster-please"] {
                assert!(
                    !text.contains(value),
                    "case {case:?}: {value:?} leaked: {text}"
                );
            }
        }
    }

    #[test]
    fn a_tls_cluster_trusts_the_configured_ca() {
        let nodes = "rediss://10.0.0.1:7000,rediss://10.0.0.2:7000";
        let config = Config::from_vars(with(
            minimal(),
            &[("REDIS_URL", nodes), ("REDIS_CA_CERT", &test_ca_pem())],
        ))
        .unwrap();
        assert!(config.redis.cluster);
        config.redis.cluster_client(None).unwrap();
    }

    #[test]
    fn secrets_rotate_as_a_comma_separated_list() {
        let mut env = minimal();
        env[0].1 = format!("{SECRET},{}", "b".repeat(40));
        let config = Config::from_vars(env).unwrap();
        assert_eq!(config.auth.secrets.len(), 2);
        assert_eq!(config.auth.secrets[0].expose_secret(), SECRET);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let config = Config::from_vars(minimal()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains("sk-test"), "{debug}");
    }

    #[test]
    fn env_example_lists_every_variable_with_its_default() {
        let example = include_str!("../../../.env.example");
        for var in VARIABLES {
            let line = example
                .lines()
                .find(|l| {
                    l.trim_start_matches("# ")
                        .starts_with(&format!("{}=", var.name))
                })
                .unwrap_or_else(|| panic!("{} missing from .env.example", var.name));
            if let Some(default) = var.default {
                assert!(line.ends_with(&format!("={default}")), "{line}");
            }
        }
    }
}
