//! The stream's network reads, done by a dedicated worker (hydrate only; the script is
//! `stream_worker.js`, started from a blob of it, so it needs no route or file of its own).
//! The worker reads the body and posts what it read at most every 33 ms (`POST_INTERVAL_MS`
//! in the script), so a burst of events costs the page's main thread one task per two frames
//! instead of one per network read.
//! Where no worker can start (a browser or a policy without them: the constructor throws, or
//! the worker fails before its first message), the page reads the stream itself, one task per
//! network read, and every later stream of the page does so at once.
//! Everything else (parsing, renewal, retries, the silence watchdog, sharing with other tabs)
//! stays in [`crate::data_updates::client`].
//!
//! **Invariant:** once [`StreamCloser::close`] is called or the [`StreamReader`] dropped, the
//! request is ended (the worker terminated, or the page's fetch aborted) and
//! [`StreamReader::next`] answers [`Delivery::Ended`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};

use gloo_net::http::Request;
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Blob, BlobPropertyBag, ErrorEvent, Event, MessageEvent,
    ReadableStreamDefaultReader, ReadableStreamReadResult, RequestCache, RequestCredentials, Url,
    Worker,
};

/// The worker's script.
const SCRIPT: &str = include_str!("stream_worker.js");

thread_local! {
    /// The blob URL of [`SCRIPT`], made once per page and kept for its life.
    static SCRIPT_URL: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Set once a worker could not start: the page then reads its streams itself.
    static NO_WORKERS: Cell<bool> = const { Cell::new(false) };
}

/// What the reader delivered.
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

/// What the reads go to. Bound: the worker posts at most one message per 33 ms, and the
/// reading task takes each in the microtask after its message, so the inbox holds one or two;
/// read by the page, it holds the network reads that came while the page was busy, which
/// the server's slow-client limit bounds.
#[derive(Default)]
struct Inbox {
    deliveries: RefCell<VecDeque<Delivery>>,
    waker: RefCell<Option<Waker>>,
    /// Something came from the worker: a failure from now on is the stream's, not the
    /// worker's.
    heard: Cell<bool>,
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

/// Who makes the request, and so how it is ended.
enum Reader {
    Worker(Worker),
    Page(AbortController),
}

/// One request of the stream, read by its own worker or by the page.
pub(crate) struct StreamReader {
    closer: StreamCloser,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    _on_error: Option<Closure<dyn FnMut(Event)>>,
}

/// Ends a [`StreamReader`]'s request, from wherever it is held (the watchdog, a cancel).
#[derive(Clone)]
pub(crate) struct StreamCloser {
    /// The worker, replaced by the page's fetch if the worker fails before its first message.
    reader: Rc<RefCell<Reader>>,
    inbox: Rc<Inbox>,
}

impl StreamCloser {
    /// Ends the request; the reader's next delivery is [`Delivery::Ended`].
    pub(crate) fn close(&self) {
        match &*self.reader.borrow() {
            Reader::Worker(worker) => worker.terminate(),
            Reader::Page(controller) => controller.abort(),
        }
        self.inbox.close();
    }
}

/// The request: an absolute URL (a blob worker has no base to resolve against) and headers.
struct StreamRequest {
    url: String,
    headers: Vec<(String, String)>,
}

impl StreamReader {
    /// Starts reading `url` (absolute) with `headers` and the page's cookies: in a worker, or
    /// in the page where workers do not start.
    pub(crate) fn open(url: &str, headers: &[(&str, &str)]) -> Result<Self, JsValue> {
        let request = StreamRequest {
            url: url.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        };
        let inbox = Rc::new(Inbox::default());
        if !NO_WORKERS.get() {
            match Worker::new(&script_url()?) {
                Ok(worker) => return Self::in_worker(worker, request, inbox),
                Err(error) => give_up_workers(&error.dyn_ref::<js_sys::Error>().map_or_else(
                    || "no constructor".to_owned(),
                    |error| error.message().into(),
                )),
            }
        }
        let controller = read_in_page(&request, Rc::clone(&inbox))?;
        Ok(Self {
            closer: StreamCloser {
                reader: Rc::new(RefCell::new(Reader::Page(controller))),
                inbox,
            },
            _on_message: None,
            _on_error: None,
        })
    }

    fn in_worker(
        worker: Worker,
        request: StreamRequest,
        inbox: Rc<Inbox>,
    ) -> Result<Self, JsValue> {
        let to = Rc::clone(&inbox);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            to.heard.set(true);
            to.put(delivery_of(event.data()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let header_object = Object::new();
        for (name, value) in &request.headers {
            Reflect::set(&header_object, &name.into(), &value.into())?;
        }
        let message = Object::new();
        Reflect::set(&message, &"url".into(), &request.url.as_str().into())?;
        Reflect::set(&message, &"headers".into(), &header_object)?;
        worker.post_message(&message)?;
        let reader = Rc::new(RefCell::new(Reader::Worker(worker.clone())));

        // A failure before the worker's first message is the worker's own (it could not load
        // or run): the page reads this stream, and every later one, itself. A later failure,
        // which the script does not catch, ends the stream (to be retried), and is logged,
        // since Chromium shows a worker's uncaught errors to no one.
        let to = Rc::clone(&inbox);
        let failed_reader = Rc::clone(&reader);
        let on_error = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
            if to.closed.get() {
                return;
            }
            let message = event
                .dyn_ref::<ErrorEvent>()
                .map_or_else(|| "it could not load".to_owned(), ErrorEvent::message);
            if to.heard.get() {
                leptos::logging::error!("docpulse: the stream's worker failed: {message}");
                to.put(Delivery::Ended);
                return;
            }
            give_up_workers(&message);
            match read_in_page(&request, Rc::clone(&to)) {
                Ok(controller) => {
                    let failed = failed_reader.replace(Reader::Page(controller));
                    if let Reader::Worker(worker) = failed {
                        worker.terminate();
                    }
                }
                Err(_) => to.put(Delivery::Ended),
            }
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Self {
            closer: StreamCloser { reader, inbox },
            _on_message: Some(on_message),
            _on_error: Some(on_error),
        })
    }

    /// A handle that ends this request.
    pub(crate) fn closer(&self) -> StreamCloser {
        self.closer.clone()
    }

    /// The next delivery, in the order read.
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

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.closer.close();
    }
}

/// Remembers that workers do not start here, saying why once.
fn give_up_workers(reason: &str) {
    if !NO_WORKERS.replace(true) {
        leptos::logging::warn!(
            "docpulse: the stream's worker cannot start ({reason}); the page reads the stream itself"
        );
    }
}

/// Reads `request` in the page into `inbox`, as the worker would: the head, each network
/// read, then the end; the controller it answers aborts the request.
fn read_in_page(request: &StreamRequest, inbox: Rc<Inbox>) -> Result<AbortController, JsValue> {
    let controller = AbortController::new()?;
    let mut builder = Request::get(&request.url)
        .credentials(RequestCredentials::SameOrigin)
        .cache(RequestCache::NoStore)
        .abort_signal(Some(&controller.signal()));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    leptos::task::spawn_local(async move {
        read_response(builder.send().await.ok(), &inbox).await;
        inbox.put(Delivery::Ended);
    });
    Ok(controller)
}

/// Puts the head and the body's reads of `response` (none when the request failed).
async fn read_response(response: Option<gloo_net::http::Response>, inbox: &Inbox) {
    let Some(response) = response else {
        return;
    };
    inbox.put(Delivery::Head {
        status: response.status(),
        retry_after: response.headers().get("retry-after"),
    });
    if !response.ok() {
        return;
    }
    let Some(reader) = response.body().and_then(|body| {
        body.get_reader()
            .dyn_into::<ReadableStreamDefaultReader>()
            .ok()
    }) else {
        return;
    };
    while !inbox.closed.get() {
        let Ok(read) = JsFuture::from(reader.read()).await else {
            return;
        };
        let read = read.unchecked_into::<ReadableStreamReadResult>();
        if read.get_done().unwrap_or(true) {
            return;
        }
        inbox.put(Delivery::Bytes(Uint8Array::new(&read.get_value()).to_vec()));
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
