//! Borrowing the memory of Python's bytes-like objects (`bytes`, `bytearray`,
//! `memoryview`, `array`...) for a syscall, without a copy.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Runs `f` on the bytes of `data`; `TypeError` if it is not bytes-like.
pub(crate) fn with_bytes<T>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> T) -> PyResult<T> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(f(bytes.as_bytes()));
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
    // SAFETY: the buffer export is held until the end of this function, so its
    // memory stays valid; it is C-contiguous and `len_bytes` long. The GIL is held
    // and no Python code runs while `f` reads it, so nothing can resize it.
    let bytes =
        unsafe { std::slice::from_raw_parts(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes()) };
    Ok(f(bytes))
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
    // SAFETY: as in `with_bytes`; the export is writable (not `readonly`), and no
    // other Rust reference to this memory exists while `f` runs.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes())
    };
    Ok(f(bytes))
}
