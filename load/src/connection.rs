//! How the load tool reaches the server: the parsed target, the source address of each
//! connection and one HTTP/1.1 client connection per TCP connection.
//!
//! **Invariant:** connection i always gets the same source address, `127.0.0.(2 + i / N)`
//! counted on past `.255` into the next octets, and never one outside 127.0.0.0/8 or the
//! loopback broadcast address.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;

use anyhow::{Context, bail};
use hyper::Uri;
use hyper::body::Body;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::IpBindAddressNoPort;
use tokio::net::{TcpSocket, TcpStream};

/// The first source address handed out; 127.0.0.1 is left to everything else on the machine.
const FIRST_SOURCE_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The last usable loopback address (127.255.255.255 is the broadcast address).
const LAST_SOURCE_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 254);

/// An HTTP/1.1 client connection over TCP whose requests have bodies of type `B`.
pub type ClientConnection<B> = http1::Connection<TokioIo<TcpStream>, B>;

/// The server a run talks to, parsed from `--url` once.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    /// The resolved address every connection goes to.
    pub address: SocketAddr,
    /// `host:port` as the URL wrote it, for the `Host` header.
    pub authority: String,
    /// The URL's path without its trailing `/`, put before every API path.
    path_prefix: String,
}

impl ServerTarget {
    /// Parses an `http://host[:port][/prefix]` URL and resolves its host.
    ///
    /// # Errors
    ///
    /// The URL is not plain http with a host, or the host does not resolve.
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("--url {url:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("--url {url:?}: scheme {other:?} is not supported, only http"),
            None => bail!("--url {url:?} needs a scheme, as in http://127.0.0.1:3000"),
        }
        let authority = uri
            .authority()
            .with_context(|| format!("--url {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let address = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve the host of --url {url:?}"))?
            .next()
            .with_context(|| format!("the host of --url {url:?} has no address"))?;
        Ok(Self {
            address,
            authority: authority.as_str().to_owned(),
            path_prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The request target for an API path such as `/api/events/stream`.
    pub fn path(&self, api_path: &str) -> String {
        format!("{}{api_path}", self.path_prefix)
    }

    /// True when the server listens on IPv4 loopback, the only case where binding the
    /// connections to other loopback source addresses works.
    pub fn accepts_loopback_sources(&self) -> bool {
        match self.address.ip() {
            IpAddr::V4(address) => address.is_loopback(),
            IpAddr::V6(_) => false,
        }
    }
}

/// The source address of connection `connection_index` when each address carries
/// `per_source` connections: `127.0.0.(2 + i / per_source)`, carried on into the higher
/// octets; `None` past 127.255.255.254 or when `per_source` is 0.
pub fn source_address(connection_index: u32, per_source: u32) -> Option<Ipv4Addr> {
    let offset = connection_index.checked_div(per_source)?;
    let address = u32::from(FIRST_SOURCE_ADDRESS).checked_add(offset)?;
    (address <= u32::from(LAST_SOURCE_ADDRESS)).then(|| Ipv4Addr::from(address))
}

/// Opens a TCP connection to `target`, from `source` (port 0) when given, and performs the
/// HTTP/1.1 handshake.
///
/// The caller must poll the returned connection (see [`drive`]) for requests to make progress.
///
/// # Errors
///
/// Binding, connecting or the handshake failed.
pub async fn open<B>(
    target: &ServerTarget,
    source: Option<Ipv4Addr>,
) -> anyhow::Result<(http1::SendRequest<B>, ClientConnection<B>)>
where
    B: Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = connect(target, source).await?;
    http1::handshake(TokioIo::new(stream))
        .await
        .context("the HTTP/1.1 handshake failed")
}

/// Opens a TCP connection to `target`, from `source` (port 0) when given, with Nagle off.
///
/// # Errors
///
/// Binding or connecting failed.
pub async fn connect(target: &ServerTarget, source: Option<Ipv4Addr>) -> anyhow::Result<TcpStream> {
    let socket = match target.address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .context("cannot create a socket")?;
    if let Some(source) = source {
        // Without it, bind() picks the port, and must find one not held by any socket on
        // that address, those in TIME_WAIT from a previous run included: with 10,000 of
        // them, connecting slows from 2,000 to a few hundred per second. With it, connect()
        // picks the port and may reuse one whose old connection went to another address.
        setsockopt(&socket, IpBindAddressNoPort, &true)
            .context("cannot defer the choice of the source port to connect")?;
        socket
            .bind(SocketAddr::new(IpAddr::V4(source), 0))
            .with_context(|| format!("cannot bind source address {source}"))?;
    }
    let stream = socket
        .connect(target.address)
        .await
        .with_context(|| format!("cannot connect to {}", target.address))?;
    stream
        .set_nodelay(true)
        .context("cannot disable Nagle's algorithm")?;
    Ok(stream)
}

/// Awaits `future` while polling `connection`, which carries its bytes.
///
/// This keeps a stream to one task instead of a second task per connection for the
/// connection future.
///
/// # Errors
///
/// The connection ended or failed before `future` completed.
pub async fn drive<B, F>(
    mut connection: Pin<&mut ClientConnection<B>>,
    future: F,
) -> anyhow::Result<F::Output>
where
    B: Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future,
{
    let mut future = std::pin::pin!(future);
    tokio::select! {
        biased;
        output = &mut future => Ok(output),
        ended = connection.as_mut() => match ended {
            // The connection may have handed over the answer (a `503` with `Connection:
            // close`, a stream's last frame) in the very poll that saw the server close.
            Ok(()) => match poll_once(future).await {
                Some(output) => Ok(output),
                None => bail!("the server closed the connection"),
            },
            Err(error) => Err(error).context("the connection failed"),
        },
    }
}

/// `future`'s output if it is ready now.
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Option<F::Output> {
    std::future::poll_fn(|context| match future.as_mut().poll(context) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(connection_index: u32, per_source: u32, expected: Option<[u8; 4]>) {
        assert_eq!(
            source_address(connection_index, per_source),
            expected.map(Ipv4Addr::from),
            "connection {connection_index} at {per_source} per source"
        );
    }

    #[test]
    fn connections_fill_one_source_address_before_the_next() {
        check(0, 10_000, Some([127, 0, 0, 2]));
        check(9_999, 10_000, Some([127, 0, 0, 2]));
        check(10_000, 10_000, Some([127, 0, 0, 3]));
        check(14_999, 10_000, Some([127, 0, 0, 3]));
        check(3, 1, Some([127, 0, 0, 5]));
    }

    #[test]
    fn source_addresses_carry_into_higher_octets_and_stop_before_broadcast() {
        check(253, 1, Some([127, 0, 0, 255]));
        check(254, 1, Some([127, 0, 1, 0]));
        let last = u32::from(LAST_SOURCE_ADDRESS) - u32::from(FIRST_SOURCE_ADDRESS);
        check(last, 1, Some([127, 255, 255, 254]));
        check(last + 1, 1, None);
        check(u32::MAX, 1, None);
        check(0, 0, None);
    }

    #[tokio::test]
    async fn a_target_keeps_its_authority_and_path_prefix() {
        let target = ServerTarget::resolve("http://127.0.0.1:3000/base/")
            .await
            .expect("a valid url");
        assert_eq!(
            target.address,
            "127.0.0.1:3000".parse().expect("an address")
        );
        assert_eq!(target.authority, "127.0.0.1:3000");
        assert_eq!(target.path("/api/events/stream"), "/base/api/events/stream");
        assert!(target.accepts_loopback_sources());

        let bare = ServerTarget::resolve("http://[::1]:8080")
            .await
            .expect("valid");
        assert_eq!(bare.path("/healthz"), "/healthz");
        assert!(!bare.accepts_loopback_sources());

        for refused in ["https://127.0.0.1", "127.0.0.1:3000", "not a url"] {
            assert!(ServerTarget::resolve(refused).await.is_err(), "{refused}");
        }
    }
}
