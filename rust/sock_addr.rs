//! Socket addresses as the kernel takes and gives them (`sockaddr_storage`), for
//! datagram sockets: built from an IP address and port, and read back as one of
//! the families a datagram transport meets.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::platform::set_sockaddr_len;

/// A socket address of any family, with its length.
#[derive(Clone)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

/// What a `SockAddr` holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Address<'a> {
    /// No address (a zero length: e.g. a datagram on a connected socket pair).
    Nothing,
    /// An IPv4 address and port.
    V4(SocketAddrV4),
    /// An IPv6 address, port, flow info and scope id.
    V6(SocketAddrV6),
    /// A Unix socket's path, without the terminating NUL; a Linux abstract name
    /// starts with a NUL byte. Empty for an unnamed sender.
    Unix(&'a [u8]),
    /// Another family: its number.
    Other(i32),
}

impl PartialEq for SockAddr {
    /// The same family and bytes (what the kernel filled in).
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for SockAddr {}

impl std::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SockAddr({:?})", self.address())
    }
}

impl SockAddr {
    /// An empty address, for the kernel to fill (`recvfrom`).
    pub fn empty() -> Self {
        Self {
            // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// The address of an IP socket.
    pub fn from_ip(addr: SocketAddr) -> Self {
        let mut out = Self::empty();
        match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: an all-zero sockaddr_in is a valid value; the fields that
                // every platform has are set below (BSDs add a length byte).
                let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                set_sockaddr_len!(sin, sin_len);
                out.write(sin);
            }
            SocketAddr::V6(v6) => {
                // SAFETY: as for sockaddr_in.
                let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_flowinfo = v6.flowinfo().to_be();
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                sin6.sin6_scope_id = v6.scope_id();
                set_sockaddr_len!(sin6, sin6_len);
                out.write(sin6);
            }
        }
        out
    }

    /// Stores `value` (a `sockaddr_in` or `sockaddr_in6`) at the start.
    fn write<T: Copy>(&mut self, value: T) {
        const { assert!(std::mem::size_of::<T>() <= std::mem::size_of::<libc::sockaddr_storage>()) };
        // SAFETY: T fits in the storage (checked above) and sockaddr_storage is
        // aligned for every sockaddr type; unaligned write keeps it sound anyway.
        unsafe {
            std::ptr::write_unaligned(std::ptr::addr_of_mut!(self.storage).cast::<T>(), value)
        };
        self.len = std::mem::size_of::<T>() as libc::socklen_t;
    }

    /// Reads a `T` from the start (the caller checked the family and length).
    fn read<T: Copy>(&self) -> T {
        // SAFETY: as in `write`; every bit pattern is valid for these plain C structs.
        unsafe { std::ptr::read_unaligned(std::ptr::addr_of!(self.storage).cast::<T>()) }
    }

    /// The family number (`AF_INET`...), `AF_UNSPEC` when empty.
    pub fn family(&self) -> i32 {
        if self.len == 0 {
            return libc::AF_UNSPEC;
        }
        i32::from(self.storage.ss_family)
    }

    /// What the address holds.
    pub fn address(&self) -> Address<'_> {
        let len = self.len as usize;
        if len == 0 {
            return Address::Nothing;
        }
        match self.family() {
            libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
                let sin: libc::sockaddr_in = self.read();
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Address::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)))
            }
            libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let sin6: libc::sockaddr_in6 = self.read();
                Address::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                ))
            }
            libc::AF_UNIX => {
                let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
                let path = self.bytes().get(offset..).unwrap_or_default();
                if path.first() == Some(&0) {
                    return Address::Unix(path);
                }
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Address::Unix(&path[..end])
            }
            family => Address::Other(family),
        }
    }

    /// The address's bytes, as long as its length says.
    fn bytes(&self) -> &[u8] {
        let len = (self.len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: the storage is a plain C struct of at least `len` bytes.
        unsafe { std::slice::from_raw_parts(std::ptr::addr_of!(self.storage).cast::<u8>(), len) }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        std::ptr::addr_of!(self.storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        std::ptr::addr_of_mut!(self.storage).cast()
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }

    pub(crate) fn len_mut(&mut self) -> &mut libc::socklen_t {
        &mut self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_read_back_as_built() {
        let v4: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        assert_eq!(
            SockAddr::from_ip(v4).address(),
            Address::V4("127.0.0.1:5353".parse().unwrap())
        );
        let v6 = SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3);
        let addr = SockAddr::from_ip(SocketAddr::V6(v6));
        assert_eq!(addr.family(), libc::AF_INET6);
        assert_eq!(addr.address(), Address::V6(v6));
    }

    #[test]
    fn addresses_are_equal_when_their_bytes_are() {
        let a = SockAddr::from_ip("127.0.0.1:1".parse().unwrap());
        assert_eq!(a, SockAddr::from_ip("127.0.0.1:1".parse().unwrap()));
        assert_ne!(a, SockAddr::from_ip("127.0.0.1:2".parse().unwrap()));
        assert_ne!(a, SockAddr::from_ip("[::1]:1".parse().unwrap()));
    }

    #[test]
    fn an_empty_address_holds_nothing() {
        let mut addr = SockAddr::empty();
        *addr.len_mut() = 0;
        assert_eq!(addr.address(), Address::Nothing);
        assert_eq!(addr.family(), libc::AF_UNSPEC);
    }
}
