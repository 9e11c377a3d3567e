//! The hostile modes (`--attack`): what one abusive client can make the server spend, measured
//! by what a legitimate user sees meanwhile ([`watch`]) and the server's peak memory.
//!
//! - `login-flood`: `--attempts` wrong logins, `--attack-concurrency` at once, from one
//!   address, or each from its own with `--spread-addresses`.
//! - `slow-headers`: `--connections` connections that send half a request head and stop.
//! - `stream-flood`: `--connections` event streams with one token subject.
//! - `upload-bomb`: one `.txt` upload of `--attack-bytes` of distinct capitalised names in one
//!   sentence, followed on the project's stream until its extraction ends.
//! - `big-field`: an upload whose `title` field is `--attack-bytes` long, sent with its length
//!   declared and again in chunks without it.
//!
//! **Invariant:** the report says `pass` only when the server's peak resident memory stayed
//! under [`MAX_PEAK_RSS`], `/healthz` p99 under [`MAX_HEALTH_P99`], and every legitimate probe
//! was answered.

mod raw;
mod watch;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use app::protocol::sse::SseParser;
use app::protocol::{EVENT_STREAM_PATH, ExtractionStatus, PROJECT_HEADER, StreamMessage};
use app::resources::CreatedDocuments;

use crate::connection::{self, ServerTarget};
use crate::options::Options;
use crate::proc_stats::{self, ProcessRef, ProcessSampler};
use crate::tokens::TokenMinter;

use self::raw::Answer;
use self::watch::{Seen, Watch};

/// The most resident memory the server may reach during an attack and pass.
pub const MAX_PEAK_RSS: u64 = 300 * 1024 * 1024;
/// The slowest `/healthz` p99 during an attack that passes.
pub const MAX_HEALTH_P99: Duration = Duration::from_millis(200);
/// Longest wait for one attack request's answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait for an extraction to end after a bomb upload.
const EXTRACTION_LIMIT: Duration = Duration::from_secs(600);
/// How long the token of an attack lives.
const TOKEN_LIFETIME_SECS: u64 = 3600;

/// The hostile modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttackKind {
    /// Wrong logins, many at once.
    LoginFlood,
    /// Connections that send half a request head and stop.
    SlowHeaders,
    /// Many event streams of one token subject.
    StreamFlood,
    /// One upload of distinct capitalised names in one sentence.
    UploadBomb,
    /// One upload with a huge `title` field.
    BigField,
}

/// What an attack did and what it cost.
#[derive(Debug)]
pub struct AttackReport {
    kind: AttackKind,
    /// What was sent, in words.
    description: String,
    /// The answers the attack got, by status (0: no answer).
    answers: BTreeMap<u16, u64>,
    /// Further lines about the attack's own outcome.
    details: Vec<String>,
    elapsed: Duration,
    seen: Seen,
}

impl AttackReport {
    /// Why the attack's targets were missed; empty when they were met.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self
            .seen
            .peak_rss_bytes
            .is_some_and(|peak| peak >= MAX_PEAK_RSS)
        {
            failures.push("peak rss over 300 MiB".to_owned());
        }
        if Duration::from_micros(self.seen.health.percentile_us(0.99)) >= MAX_HEALTH_P99 {
            failures.push("healthz p99 over 200 ms".to_owned());
        }
        if self.seen.health.failed > 0 || self.seen.bystander.failed > 0 {
            failures.push("legitimate requests failed".to_owned());
        }
        failures
    }

    /// The report as text, one `name: value` line per measure, ending with the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let kind = self
            .kind
            .to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default();
        let _ = writeln!(out, "attack: {kind}, {}", self.description);
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(status, count)| match status {
                0 => format!("no answer x {count}"),
                status => format!("{status} x {count}"),
            })
            .collect();
        let _ = writeln!(out, "answers: {}", answers.join(", "));
        for detail in &self.details {
            let _ = writeln!(out, "{detail}");
        }
        let _ = writeln!(out, "attack time: {:.2} s", self.elapsed.as_secs_f64());
        for (name, probes) in [
            ("healthz", &self.seen.health),
            ("another user's GET /api/projects", &self.seen.bystander),
        ] {
            let _ = writeln!(
                out,
                "{name} during the attack: {} answered, {} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                probes.latencies_us.len(),
                probes.failed,
                milliseconds(probes.percentile_us(0.5)),
                milliseconds(probes.percentile_us(0.99)),
                milliseconds(probes.percentile_us(1.0)),
            );
        }
        match self.seen.peak_rss_bytes {
            Some(peak) => {
                let _ = writeln!(
                    out,
                    "server peak rss: {:.1} MiB",
                    peak as f64 / 1024.0 / 1024.0
                );
            }
            None => {
                let _ = writeln!(out, "server peak rss: not measured (no --server-pid)");
            }
        }
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(out, "result: pass");
        } else {
            let _ = writeln!(out, "result: fail ({})", failures.join(", "));
        }
        out
    }
}

fn milliseconds(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// Runs the attack `options.attack` names against the first `--url`.
///
/// # Errors
///
/// The URL is unusable, a token cannot be signed, or the attack could not start (the upload
/// of a bomb refused, say); the answers of the attack itself are counted, not errors.
pub async fn run(kind: AttackKind, options: &Options) -> anyhow::Result<AttackReport> {
    let url = options.url.first().context("--url is required")?;
    let target = ServerTarget::resolve(url).await?;
    let minter = TokenMinter::new(
        &options.jwt_secret,
        crate::clock::unix_secs_now() + TOKEN_LIFETIME_SECS,
    );
    let bystander = minter.user("load-bystander", "load_proj_0")?;
    let attacker = minter.user("load-attacker", &options.attack_project)?;
    let server = options
        .server_pid
        .map(|pid| ProcessSampler::new(ProcessRef::Pid(pid), proc_stats::clock_ticks_per_second()));
    let watch = Watch::start(&target, &bystander, server);
    let started = Instant::now();
    let outcome = match kind {
        AttackKind::LoginFlood => login_flood(&target, options).await,
        AttackKind::SlowHeaders => slow_headers(&target, options).await,
        AttackKind::StreamFlood => stream_flood(&target, options, &attacker).await,
        AttackKind::UploadBomb => upload_bomb(&target, options, &attacker).await,
        AttackKind::BigField => big_field(&target, options, &attacker).await,
    };
    let elapsed = started.elapsed();
    let seen = watch.finish().await;
    let (description, answers, details) = outcome?;
    Ok(AttackReport {
        kind,
        description,
        answers,
        details,
        elapsed,
        seen,
    })
}

type Outcome = anyhow::Result<(String, BTreeMap<u16, u64>, Vec<String>)>;

fn count(answers: &mut BTreeMap<u16, u64>, answer: &anyhow::Result<Answer>) {
    let status = answer.as_ref().map_or(0, |answer| answer.status);
    *answers.entry(status).or_insert(0) += 1;
}

/// The loopback source address of attacker `index` with `--spread-addresses`, else none.
fn source_of(index: u32, spread: bool) -> Option<Ipv4Addr> {
    spread
        .then(|| connection::source_address(index, 1))
        .flatten()
}

async fn login_flood(target: &ServerTarget, options: &Options) -> Outcome {
    let gate = Arc::new(Semaphore::new(
        usize::try_from(options.attack_concurrency)
            .unwrap_or(1)
            .max(1),
    ));
    let mut attempts = tokio::task::JoinSet::new();
    for index in 0..options.attempts {
        let body =
            format!("{{\"email\":\"victim{index}@example.com\",\"password\":\"wrong-{index}\"}}");
        let mut request = raw::head(
            target,
            "POST",
            "/api/auth/login",
            &[("Content-Type", "application/json")],
            Some(body.len() as u64),
        );
        request.push_str(&body);
        let (target, gate) = (target.clone(), gate.clone());
        let source = source_of(index, options.spread_addresses);
        attempts.spawn(async move {
            let _turn = gate.acquire_owned().await;
            raw::exchange(&target, source, request.as_bytes(), ANSWER_LIMIT).await
        });
    }
    let mut answers = BTreeMap::new();
    let (mut refusals, mut with_retry_after) = (0, 0);
    while let Some(answer) = attempts.join_next().await {
        let answer = answer.context("an attempt panicked")?;
        if let Ok(refused) = &answer
            && matches!(refused.status, 429 | 503)
        {
            refusals += 1;
            with_retry_after += u64::from(refused.header("retry-after").is_some());
        }
        count(&mut answers, &answer);
    }
    let from = if options.spread_addresses {
        "each from its own address (127.0.0.2 up)".to_owned()
    } else {
        "from one address".to_owned()
    };
    Ok((
        format!(
            "{} wrong logins, {} at once, {from}",
            options.attempts, options.attack_concurrency
        ),
        answers,
        vec![format!(
            "refusals carrying Retry-After: {with_retry_after} of {refusals}"
        )],
    ))
}

async fn slow_headers(target: &ServerTarget, options: &Options) -> Outcome {
    let half_head = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n", target.authority);
    let hold = options.publish_duration();
    let mut held = tokio::task::JoinSet::new();
    for index in 0..options.connections {
        let (target, half_head) = (target.clone(), half_head.clone());
        let source = connection::source_address(index, options.per_source);
        held.spawn(async move {
            let mut tcp = connection::connect(&target, source).await?;
            tcp.write_all(half_head.as_bytes()).await?;
            let opened = Instant::now();
            let mut buffer = [0_u8; 1024];
            // The server should close it: read until it does, or the hold ends.
            match tokio::time::timeout(hold, tcp.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => Ok::<_, anyhow::Error>(Some(opened.elapsed())),
                Ok(Ok(_)) => bail!("the server answered half a head"),
                Err(_) => Ok(None),
            }
        });
    }
    let mut closed_after = Vec::new();
    let mut still_open = 0_u64;
    let mut failed = 0_u64;
    while let Some(outcome) = held.join_next().await {
        match outcome.context("a connection panicked")? {
            Ok(Some(after)) => closed_after.push(after),
            Ok(None) => still_open += 1,
            Err(_) => failed += 1,
        }
    }
    closed_after.sort_unstable();
    let longest = closed_after.last().copied().unwrap_or_default();
    let answers = BTreeMap::from([(0, u64::from(options.connections))]);
    Ok((
        format!(
            "{} connections sending half a request head, held up to {} s",
            options.connections,
            hold.as_secs()
        ),
        answers,
        vec![format!(
            "closed by the server: {} (the last after {:.1} s), still open at the end: {still_open}, could not connect: {failed}",
            closed_after.len(),
            longest.as_secs_f64()
        )],
    ))
}

/// The head of a request for the attacked project's event stream, with `token`.
fn stream_request(target: &ServerTarget, options: &Options, token: &str) -> String {
    let authorization = format!("Bearer {token}");
    raw::head(
        target,
        "GET",
        EVENT_STREAM_PATH,
        &[
            ("Authorization", &authorization),
            (PROJECT_HEADER, &options.attack_project),
        ],
        None,
    )
}

async fn stream_flood(target: &ServerTarget, options: &Options, token: &str) -> Outcome {
    let request = stream_request(target, options, token);
    let hold = options.publish_duration();
    let mut streams = tokio::task::JoinSet::new();
    for index in 0..options.connections {
        let (target, request) = (target.clone(), request.clone());
        let source = connection::source_address(index, options.per_source);
        streams.spawn(async move {
            let mut tcp = connection::connect(&target, source).await?;
            tcp.write_all(request.as_bytes()).await?;
            let mut head = Vec::new();
            let mut buffer = [0_u8; 4096];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                let read = tcp.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                head.extend_from_slice(&buffer[..read]);
            }
            let status = Answer::parse(&head)?.status;
            if status == 200 {
                // Held open until the hold ends, as a greedy client would.
                tokio::time::sleep(hold).await;
            }
            Ok::<_, anyhow::Error>(status)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(outcome) = streams.join_next().await {
        let status = outcome.context("a stream panicked")?.unwrap_or(0);
        *answers.entry(status).or_insert(0) += 1;
    }
    Ok((
        format!(
            "{} event streams of one token subject on {}, held {} s",
            options.connections,
            options.attack_project,
            hold.as_secs()
        ),
        answers,
        Vec::new(),
    ))
}

/// One sentence of distinct capitalised names (`Qaaaa, Qaaab, ...`) of about `bytes` bytes.
fn name_bomb(bytes: u64) -> String {
    let mut text = String::from("We met Qaaaa");
    let mut number: u32 = 1;
    while (text.len() as u64) + 8 < bytes {
        let mut name = String::from(", Q");
        for place in (0..4).rev() {
            let digit = number / 26_u32.pow(place) % 26;
            name.push(char::from(b'a' + u8::try_from(digit).unwrap_or(0)));
        }
        text.push_str(&name);
        number += 1;
    }
    text.push('.');
    text
}

async fn upload_bomb(target: &ServerTarget, options: &Options, token: &str) -> Outcome {
    let bomb = name_bomb(options.attack_bytes);
    let authorization = format!("Bearer {token}");
    // Follow the project first, so the extraction's end cannot be missed.
    let mut stream = connection::connect(target, None).await?;
    stream
        .write_all(stream_request(target, options, token).as_bytes())
        .await?;

    let boundary = "docpulse-load-bomb";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bomb.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n{bomb}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let mut request = raw::head(
        target,
        "POST",
        "/api/documents",
        &[
            ("Authorization", &authorization),
            (PROJECT_HEADER, &options.attack_project),
            ("Content-Type", &content_type),
        ],
        Some(body.len() as u64),
    );
    request.push_str(&body);
    let uploaded_at = Instant::now();
    let answer = raw::exchange(target, None, request.as_bytes(), ANSWER_LIMIT).await?;
    if answer.status != 201 {
        bail!("the bomb was refused: {} {}", answer.status, answer.body);
    }
    let created: CreatedDocuments =
        serde_json::from_str(&answer.body).context("the upload's answer is not its JSON")?;
    let document_id = created
        .documents
        .into_iter()
        .next()
        .context("the upload's answer names no document")?
        .id;

    let extraction = tokio::time::timeout(EXTRACTION_LIMIT, async {
        let mut parser = SseParser::new();
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                bail!("the stream ended before the extraction");
            }
            for frame in parser.push(&buffer[..read]) {
                let Ok(Some(StreamMessage::Entity { event, .. })) =
                    StreamMessage::from_frame(&frame)
                else {
                    continue;
                };
                if let Some(job) = event.extraction_job()
                    && job.document_id.as_deref() == Some(document_id.as_str())
                    && matches!(
                        job.status,
                        Some(ExtractionStatus::Done | ExtractionStatus::Failed)
                    )
                {
                    return Ok::<_, anyhow::Error>(job);
                }
            }
        }
    })
    .await
    .context("the extraction did not end in time")??;
    let mut answers = BTreeMap::new();
    answers.insert(answer.status, 1);
    Ok((
        format!(
            "one upload of {} bytes: one sentence of distinct capitalised names",
            bomb.len()
        ),
        answers,
        vec![format!(
            "extraction: {} after {:.2} s from the upload, {} entities, {} relations{}",
            if extraction.status == Some(ExtractionStatus::Done) {
                "done"
            } else {
                "failed"
            },
            uploaded_at.elapsed().as_secs_f64(),
            extraction.entities.unwrap_or_default(),
            extraction.relations.unwrap_or_default(),
            if extraction.truncated == Some(true) {
                ", cut short by a cap or the time budget"
            } else {
                ""
            }
        )],
    ))
}

async fn big_field(target: &ServerTarget, options: &Options, token: &str) -> Outcome {
    let authorization = format!("Bearer {token}");
    let boundary = "docpulse-load-field";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let prefix = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n");
    let suffix = format!(
        "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         \r\nSome text.\r\n--{boundary}--\r\n"
    );
    let length = prefix.len() as u64 + options.attack_bytes + suffix.len() as u64;
    let headers = [
        ("Authorization", authorization.as_str()),
        (PROJECT_HEADER, options.attack_project.as_str()),
        ("Content-Type", content_type.as_str()),
    ];
    let mut answers = BTreeMap::new();
    let mut details = Vec::new();
    for declared in [true, false] {
        let mut head = raw::head(
            target,
            "POST",
            "/api/documents",
            &headers,
            declared.then_some(length),
        );
        if !declared {
            head = head.replacen("\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n", 1);
        }
        let (answer, sent) = send_field(
            target,
            &head,
            &prefix,
            options.attack_bytes,
            &suffix,
            !declared,
        )
        .await;
        count(&mut answers, &answer);
        details.push(format!(
            "{}: answered {} after {sent} of {length} bytes were sent",
            if declared {
                "length declared"
            } else {
                "chunked, no length"
            },
            answer.map_or_else(
                |error| format!("nothing ({error:#})"),
                |answer| { format!("{} {}", answer.status, answer.body.trim()) }
            ),
        ));
    }
    Ok((
        format!(
            "two uploads with a title field of {} bytes",
            options.attack_bytes
        ),
        answers,
        details,
    ))
}

/// Sends `head`, then `prefix`, `field_bytes` of `t` and `suffix` (in HTTP chunks when
/// `chunked`), while reading the answer; stops sending once the answer came or the server
/// stopped taking bytes. Returns the answer and how many body bytes went out.
async fn send_field(
    target: &ServerTarget,
    head: &str,
    prefix: &str,
    field_bytes: u64,
    suffix: &str,
    chunked: bool,
) -> (anyhow::Result<Answer>, u64) {
    let tcp = match connection::connect(target, None).await {
        Ok(tcp) => tcp,
        Err(error) => return (Err(error), 0),
    };
    let (mut reader, mut writer) = tcp.into_split();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sending = {
        let sent = sent.clone();
        let (head, prefix, suffix) = (head.to_owned(), prefix.to_owned(), suffix.to_owned());
        tokio::spawn(async move {
            let frame = |bytes: &[u8]| -> Vec<u8> {
                if chunked {
                    let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
                    framed.extend_from_slice(bytes);
                    framed.extend_from_slice(b"\r\n");
                    framed
                } else {
                    bytes.to_vec()
                }
            };
            writer.write_all(head.as_bytes()).await?;
            writer.write_all(&frame(prefix.as_bytes())).await?;
            let piece = vec![b't'; 64 * 1024];
            let mut left = field_bytes;
            while left > 0 {
                let size = usize::try_from(left.min(piece.len() as u64)).unwrap_or(piece.len());
                writer.write_all(&frame(&piece[..size])).await?;
                left -= size as u64;
                sent.fetch_add(size as u64, std::sync::atomic::Ordering::Relaxed);
            }
            writer.write_all(&frame(suffix.as_bytes())).await?;
            if chunked {
                writer.write_all(b"0\r\n\r\n").await?;
            }
            Ok::<_, std::io::Error>(())
        })
    };
    let answer = tokio::time::timeout(ANSWER_LIMIT, async {
        let mut bytes = Vec::new();
        let mut buffer = [0_u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) => break,
                Ok(read) => bytes.extend_from_slice(&buffer[..read]),
                Err(_) if !bytes.is_empty() => break,
                Err(error) => return Err(anyhow::Error::new(error)),
            }
        }
        Answer::parse(&bytes)
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {ANSWER_LIMIT:?}")));
    sending.abort();
    (answer, sent.load(std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_bomb_is_one_sentence_of_distinct_names_of_about_the_size_asked() {
        let bomb = name_bomb(33_000);
        assert!((32_990..=33_000).contains(&bomb.len()), "{}", bomb.len());
        assert!(bomb.starts_with("We met Qaaaa, Qaaab, Qaaac"));
        assert!(bomb.ends_with('.'));
        let names: Vec<&str> = bomb
            .trim_start_matches("We met ")
            .trim_end_matches('.')
            .split(", ")
            .collect();
        let distinct: std::collections::BTreeSet<&&str> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }
}
