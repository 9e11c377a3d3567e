//! The stream's network reads, done by a dedicated worker (hydrate only; the script is
//! `stream_worker.js`, started from a blob of it, so it needs no route or file of its own).
//! The worker reads the body and posts what it read at most every 33 ms (`POST_INTERVAL_MS`
//! in the script), so a burst of events costs the page's main thread one task per two frames
//! instead of one per network read.
//! Everything else (parsing, renewal, retries, the silence watchdog, sharing with other tabs)
//! stays in [`crate::data_updates::client`].
//!
//! **Invariant:** once [`StreamCloser::close`] is called or the [`StreamWorker`] dropped, the
//! worker is terminated (its request with it) and [`StreamWorker::next`] answers
//! [`Delivery::Ended`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};

use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, ErrorEvent, MessageEvent, Url, Worker};

/// The worker's script.
const SCRIPT: &str = include_str!("stream_worker.js");

thread_local! {
    /// The blob URL of [`SCRIPT`], made once per page and kept for its life.
    static SCRIPT_URL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// What the worker delivered.
pub(crate) enum Delivery {
    /// The answer's status, and its `Retry-After`.
    Head {
        status: u16,
        retry_after: Option<String>,
    },
    /// Body bytes, in order.
    Bytes(Vec<u8>),
    /// The request failed, the body ended, or the stream was closed.
    Ended,
}

/// What the worker's messages go to. Bound: the worker posts at most one message per 33 ms,
/// and the reading task takes each in the microtask after its message, so the inbox holds
/// one or two.
#[derive(Default)]
struct Inbox {
    deliveries: RefCell<VecDeque<Delivery>>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Inbox {
    fn put(&self, delivery: Delivery) {
        self.deliveries.borrow_mut().push_back(delivery);
        self.wake();
    }

    fn close(&self) {
        self.closed.set(true);
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// One request of the stream, read by its own worker.
pub(crate) struct StreamWorker {
    closer: StreamCloser,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

/// Ends a [`StreamWorker`]'s request, from wherever it is held (the watchdog, a cancel).
#[derive(Clone)]
pub(crate) struct StreamCloser {
    worker: Worker,
    inbox: Rc<Inbox>,
}

impl StreamCloser {
    /// Terminates the worker; the reader's next delivery is [`Delivery::Ended`].
    pub(crate) fn close(&self) {
        self.worker.terminate();
        self.inbox.close();
    }
}

impl StreamWorker {
    /// Starts a worker that `GET`s `url` (absolute: a blob worker has no base to resolve
    /// against) with `headers` and the page's cookies.
    pub(crate) fn open(url: &str, headers: &[(&str, &str)]) -> Result<Self, JsValue> {
        let worker = Worker::new(&script_url()?)?;
        let inbox = Rc::new(Inbox::default());
        let to = Rc::clone(&inbox);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            to.put(delivery_of(event.data()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // An error the script did not catch ends the stream (to be retried), and is logged,
        // since Chromium shows a worker's uncaught errors to no one.
        let to = Rc::clone(&inbox);
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            leptos::logging::error!("docpulse: the stream's worker failed: {}", event.message());
            to.put(Delivery::Ended);
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let header_object = Object::new();
        for (name, value) in headers {
            Reflect::set(&header_object, &(*name).into(), &(*value).into())?;
        }
        let request = Object::new();
        Reflect::set(&request, &"url".into(), &url.into())?;
        Reflect::set(&request, &"headers".into(), &header_object)?;
        worker.post_message(&request)?;
        Ok(Self {
            closer: StreamCloser { worker, inbox },
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// A handle that ends this request.
    pub(crate) fn closer(&self) -> StreamCloser {
        self.closer.clone()
    }

    /// The next delivery, in the worker's order.
    pub(crate) async fn next(&self) -> Delivery {
        let inbox = &self.closer.inbox;
        std::future::poll_fn(|context| {
            if inbox.closed.get() {
                return Poll::Ready(Delivery::Ended);
            }
            if let Some(delivery) = inbox.deliveries.borrow_mut().pop_front() {
                return Poll::Ready(delivery);
            }
            *inbox.waker.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for StreamWorker {
    fn drop(&mut self) {
        self.closer.close();
    }
}

/// Reads one of the worker's messages (`stream_worker.js` says which); anything unexpected
/// ends the stream.
fn delivery_of(data: JsValue) -> Delivery {
    let data = match data.dyn_into::<ArrayBuffer>() {
        Ok(buffer) => return Delivery::Bytes(Uint8Array::new(&buffer).to_vec()),
        Err(data) => data,
    };
    if !data.is_object() {
        return Delivery::Ended;
    }
    let field = |name: &str| Reflect::get(&data, &name.into()).unwrap_or(JsValue::UNDEFINED);
    Delivery::Head {
        status: field("status")
            .as_f64()
            .and_then(|status| u16::try_from(status as i64).ok())
            .unwrap_or(0),
        retry_after: field("retryAfter").as_string(),
    }
}

/// The blob URL the workers start from.
fn script_url() -> Result<String, JsValue> {
    SCRIPT_URL.with(|cached| {
        if let Some(url) = &*cached.borrow() {
            return Ok(url.clone());
        }
        let options = BlobPropertyBag::new();
        options.set_type("text/javascript");
        let parts = Array::of1(&SCRIPT.into());
        let blob = Blob::new_with_str_sequence_and_options(&parts, &options)?;
        let url = Url::create_object_url_with_blob(&blob)?;
        *cached.borrow_mut() = Some(url.clone());
        Ok(url)
    })
}
