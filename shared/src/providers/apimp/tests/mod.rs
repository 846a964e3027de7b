//! APIMP's tests that drive the engine with it (its callbacks through the receiver, its
//! messages through the worker) and its properties over hostile input.

mod props;
mod receiver;
mod worker;
