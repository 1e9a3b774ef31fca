//! A port's client built on its first use, once per cold start.
//!
//! A function's SDK clients other than DynamoDB's (and its TLS clients for non-AWS hosts) are
//! [`Lazy`]: a cold start does not build the clients the function's next events may never use
//! (control answers most commands with DynamoDB alone, a webhook ping needs no CodeBuild). Each is
//! still built at most once per execution environment and then shared, as an eager one was.
//! DynamoDB's client stays eager: `runtime::bootstrap`'s warm-up call uses it during init.
//!
//! Why (measured, bench/README.md "Init against the physical limit"): under the Runtime API
//! emulator, building control's five other SDK clients and its STS connector was 0.8–1.1 ms of
//! its cold start (`wire_us`), and deploy-events' and the sweeper's outbound HTTP check client
//! loaded the system CA store at init; see the commit that made them lazy for the numbers after.
//!
//! A `std::sync::OnceLock`, not an async cell: building is synchronous and takes microseconds, so
//! a concurrent first use waits for the one builder on its thread, and every user gets the same
//! value. A failed build is kept as well (it is a configuration fault, such as no trust store, that
//! a second try in the same environment would repeat) and every use answers it as a
//! [`ServiceError`], never a panic.

use std::sync::OnceLock;

use crate::ports::ServiceError;

/// Builds the value of a [`Lazy`].
type Make<T> = Box<dyn Fn() -> Result<T, ServiceError> + Send + Sync>;

/// A value built on first use (see the module documentation).
pub struct Lazy<T> {
    cell: OnceLock<Result<T, ServiceError>>,
    /// `None` for a [`Lazy::ready`] value (its cell is filled).
    make: Option<Make<T>>,
}

impl<T> Lazy<T> {
    /// Built by `make` on the first [`Lazy::get`].
    pub fn new(make: impl Fn() -> Result<T, ServiceError> + Send + Sync + 'static) -> Lazy<T> {
        Lazy {
            cell: OnceLock::new(),
            make: Some(Box::new(make)),
        }
    }

    /// An SDK client built from the function's SDK configuration on first use
    /// (`aws_sdk_ecs::Client::new` and the like: they do not fail on a configuration
    /// `adapters::lambda_sdk_config` made).
    pub fn sdk_client(sdk: &aws_config::SdkConfig, new: fn(&aws_config::SdkConfig) -> T) -> Lazy<T>
    where
        T: 'static,
    {
        let sdk = sdk.clone();
        Lazy::new(move || Ok(new(&sdk)))
    }

    /// Already built (tests, or a client made elsewhere).
    pub fn ready(value: T) -> Lazy<T> {
        Lazy {
            cell: OnceLock::from(Ok(value)),
            make: None,
        }
    }

    /// The value, built now if this is the first use; the build's error on every use if it failed.
    pub fn get(&self) -> Result<&T, ServiceError> {
        self.cell
            .get_or_init(|| match &self.make {
                Some(make) => make(),
                None => Err(ServiceError::Rejected("client not built".into())),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the value was built (or its build failed) already.
    pub fn is_built(&self) -> bool {
        self.cell.get().is_some()
    }
}

impl<T> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("built", &self.is_built())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn built_once_on_first_use_even_when_first_used_concurrently() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let lazy = Arc::new(Lazy::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            // long enough for the other threads to arrive while it builds
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(vec![1u8, 2, 3])
        }));
        assert!(!lazy.is_built());
        assert_eq!(builds.load(Ordering::SeqCst), 0, "nothing built before use");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (lazy, barrier) = (lazy.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    lazy.get().unwrap().as_ptr() as usize
                })
            })
            .collect();
        let addresses: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(
            addresses.iter().all(|a| *a == addresses[0]),
            "every user shares the one value"
        );
        lazy.get().unwrap();
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(lazy.is_built());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_use_from_tasks_builds_once() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let lazy = Arc::new(Lazy::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(String::from("client"))
        }));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let lazy = lazy.clone();
                tokio::spawn(async move { lazy.get().map(|s| s.len()) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(6));
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_build_is_a_service_error_on_every_use_and_is_not_retried() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let lazy: Lazy<u32> = Lazy::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Err(ServiceError::Rejected("no TLS root certificates".into()))
        });
        for _ in 0..3 {
            assert_eq!(
                lazy.get(),
                Err(ServiceError::Rejected("no TLS root certificates".into()))
            );
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(lazy.is_built());
    }

    #[test]
    fn a_ready_value_is_used_as_is() {
        let lazy = Lazy::ready(7u32);
        assert!(lazy.is_built());
        assert_eq!(lazy.get(), Ok(&7));
        assert_eq!(format!("{lazy:?}"), "Lazy { built: true }");
    }

    #[test]
    fn an_sdk_client_is_built_from_the_function_configuration_on_first_use() {
        let sdk = crate::adapters::lambda_sdk_config_from(|name| {
            (name == "AWS_REGION").then(|| "eu-west-1".to_string())
        });
        let lazy = Lazy::sdk_client(&sdk, aws_sdk_sns::Client::new);
        assert!(!lazy.is_built());
        let client = lazy.get().unwrap();
        assert_eq!(
            client.config().region().map(|r| r.as_ref()),
            Some("eu-west-1")
        );
        assert!(lazy.is_built());
    }
}
