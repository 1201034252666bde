//! Borrowing the memory of Python's bytes-like objects (`bytes`, `bytearray`,
//! `memoryview`, `array`...) for a syscall, without a copy.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The bytes of a bytes-like object, exported for as long as this lives: while it
/// does, the object cannot be resized (Python refuses with `BufferError`).
pub(crate) enum BytesLike<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(PyUntypedBuffer),
}

impl<'py> BytesLike<'py> {
    /// The bytes of `data`; `TypeError` if it is not bytes-like. (An object whose
    /// `__buffer__` is Python code runs it here: take this before any lock.)
    pub(crate) fn new(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = data.cast::<PyBytes>() {
            return Ok(BytesLike::Bytes(bytes.clone()));
        }
        let buffer = PyUntypedBuffer::get(data).map_err(|_| {
            PyTypeError::new_err(format!(
                "data argument must be a bytes-like object, not '{}'",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        if !buffer.is_c_contiguous() {
            return Err(PyBufferError::new_err("data must be a contiguous buffer"));
        }
        Ok(BytesLike::Buffer(buffer))
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            BytesLike::Bytes(bytes) => bytes.as_bytes(),
            // SAFETY: the export is held as long as `self`, so its memory stays
            // valid and cannot be resized; it is C-contiguous and `len_bytes` long.
            BytesLike::Buffer(buffer) => unsafe {
                std::slice::from_raw_parts(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes())
            },
        }
    }
}

/// Runs `f` on the bytes of `data`; `TypeError` if it is not bytes-like.
pub(crate) fn with_bytes<T>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> T) -> PyResult<T> {
    Ok(f(BytesLike::new(data)?.as_slice()))
}

/// Runs `f` on the writable memory of `buf` (what `BufferedProtocol.get_buffer`
/// returned); `TypeError` if it is read-only or not a buffer.
pub(crate) fn with_writable<T>(
    buf: &Bound<'_, PyAny>,
    f: impl FnOnce(&mut [u8]) -> T,
) -> PyResult<T> {
    let buffer = PyUntypedBuffer::get(buf)?;
    if buffer.readonly() || !buffer.is_c_contiguous() {
        return Err(PyTypeError::new_err(
            "get_buffer() must return a writable contiguous buffer",
        ));
    }
    // SAFETY: as in `as_slice`; the export is writable (not `readonly`), and no
    // other Rust reference to this memory exists while `f` runs.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes())
    };
    Ok(f(bytes))
}
