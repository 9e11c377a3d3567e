//! News of ended sessions between instances: a Redis pub/sub channel, heard by one task per
//! instance.

use std::sync::Arc;

use redis::Client;
use tokio_util::sync::CancellationToken;

use super::{Inner, RECONNECT_PAUSE, deadline};
use crate::events::{BusError, SessionNews};

/// The channel on which instances announce ended sessions.
pub(super) const SESSION_CHANNEL: &str = "docpulse:sessions:ended";

/// Subscribes to [`SESSION_CHANNEL`] and passes what it hears to this instance's listeners;
/// after every (re)connection it says news may have been lost, since the channel keeps
/// nothing for a subscriber that was away.
pub(super) async fn hear_session_news(
    inner: Arc<Inner>,
    client: Client,
    shutdown: CancellationToken,
) {
    loop {
        let heard = tokio::select! {
            () = shutdown.cancelled() => return,
            heard = hear_until_lost(&inner, &client) => heard,
        };
        if let Err(error) = heard {
            tracing::warn!(%error, "the redis session news were lost; retrying");
        }
        let _ = inner.session_news.send(SessionNews::Lost);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}

async fn hear_until_lost(inner: &Inner, client: &Client) -> Result<(), BusError> {
    use futures_util::StreamExt;

    let mut pubsub = deadline(client.get_async_pubsub()).await?;
    deadline(pubsub.subscribe(SESSION_CHANNEL)).await?;
    let _ = inner.session_news.send(SessionNews::Lost);
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        if let Ok(sid) = message.get_payload::<String>() {
            let _ = inner.session_news.send(SessionNews::Ended(sid.into()));
        }
    }
    Err(BusError::Unavailable("the session channel closed".into()))
}
