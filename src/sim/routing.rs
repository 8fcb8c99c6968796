//! The simulator's route tables: one line per path, with the methods it answers.

/// `resources!(cfg; "/path" => get(handler), post(handler); ...)` registers one actix resource
/// per path, so a method the path lacks answers 405 instead of falling through to another.
macro_rules! resources {
    ($cfg:expr; $($path:literal => $($method:ident($handler:expr)),+ ;)+) => {
        $(
            $cfg.service(
                actix_web::web::resource($path)
                    $(.route(actix_web::web::$method().to($handler)))+
            );
        )+
    };
}

pub(crate) use resources;
