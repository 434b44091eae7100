//! simple-ipam: an IPAM plugin that hands out IPv4 addresses from pools,
//! the example for network-side plugins built with `plugin-server`.
//!
//! `docker network create --ipam-driver simple-ipam net1` gets a pool of
//! its own, carved from the configured range (`/24` pools by default, the
//! whole range when it is smaller); `--subnet 10.9.0.0/24` gets that subnet.
//! Addresses are handed out lowest first, never the network or broadcast
//! address, never twice. Everything is in memory.
//!
//! Pools never overlap: a requested subnet overlapping a pool in use is
//! refused, and a pool chosen for a request without a subnet overlaps
//! neither a pool in use nor a route of the host (read from
//! `/proc/net/route`, or the file given to [`SimpleIpam::route_table`]).
//! This matters because of how dockerd picks a default pool
//! (libnetwork#1386): when the pool a plugin returns overlaps a route of
//! dockerd's host, dockerd keeps the pool and asks again, in a tight loop,
//! until the plugin returns a pool it likes or an error. A plugin that
//! answers the same pool every time feeds that loop forever. simple-ipam
//! answers each repeat with the next free pool, says clearly when the range
//! is exhausted, and after [`MAX_UNUSED_DEFAULT_POOLS`] pools in a row that
//! the engine neither used nor released it answers with an error instead of
//! a pool, which ends the loop.
//!
//! Errors are plugin errors (`500 {"Err": …}`): IPv6 or sub-pool requests,
//! malformed or overlapping subnets, unknown pool ids, an address outside
//! its pool or already taken, a full pool, an exhausted range.
//!
//! [`cli`] is the command line the `simple-ipam` binary runs.
//!
//! **What it must never do:** touch the host's network configuration (it
//! only reads the route table), or answer a request without a subnet with
//! a pool that overlaps one it has handed out.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use plugin_server::ipam::*;
use plugin_server::{BuildError, Plugin, PluginError};

pub mod cli;

/// How many pools in a row simple-ipam hands out for requests without a
/// subnet, with no other call in between (the engine used none of them),
/// before it answers with an error instead of yet another pool.
pub const MAX_UNUSED_DEFAULT_POOLS: usize = 8;

/// The prefix length of the pools carved from the range, unless the range
/// itself is smaller.
pub const DEFAULT_POOL_PREFIX: u8 = 24;

/// The route table read when none is given.
pub const PROC_NET_ROUTE: &str = "/proc/net/route";

/// An IPv4 subnet in CIDR form, `/30` or larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    /// The subnet `ip/prefix` (host bits cleared); `None` when the prefix
    /// is longer than 32.
    pub fn new(ip: Ipv4Addr, prefix: u8) -> Option<Cidr> {
        (prefix <= 32).then(|| {
            let c = Cidr { network: 0, prefix };
            Cidr {
                network: u32::from(ip) & c.mask(),
                prefix,
            }
        })
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The usable host addresses: all but the network and broadcast ones.
    fn hosts(&self) -> std::ops::RangeInclusive<u32> {
        (self.network + 1)..=(self.network | !self.mask()) - 1
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let mask = self.mask() & other.mask();
        self.network & mask == other.network & mask
    }

    /// The subnets of length `prefix` this one splits into, in address
    /// order; just itself when `prefix` is not longer than its own.
    fn subnets(self, prefix: u8) -> impl Iterator<Item = Cidr> {
        let prefix = prefix.clamp(self.prefix, 32);
        let count = 1u64 << (prefix - self.prefix);
        let step = 1u64 << (32 - prefix);
        (0..count).map(move |i| Cidr {
            // In range: `i * step` stays inside this subnet.
            network: self.network + (i * step) as u32,
            prefix,
        })
    }
}

impl FromStr for Cidr {
    type Err = PluginError;

    fn from_str(s: &str) -> Result<Cidr, PluginError> {
        let bad = |why: &str| PluginError::new(format!("invalid subnet {s:?}: {why}"));
        let (ip, prefix) = s.split_once('/').ok_or_else(|| bad("expected A.B.C.D/N"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        if prefix > 30 {
            return Err(bad("prefix must be /30 or shorter"));
        }
        Cidr::new(ip, prefix).ok_or_else(|| bad("bad prefix length"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// The destinations of a Linux route table in `/proc/net/route` format
/// (hexadecimal little-endian `Destination` and `Mask` columns). The
/// default route (`0.0.0.0/0`) is left out, as libnetwork leaves it out of
/// its overlap check; unreadable lines are skipped.
pub fn parse_route_table(text: &str) -> Vec<Cidr> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dest = hex(cols.get(1)?)?;
            let mask = hex(cols.get(7)?)?;
            // A route mask is contiguous ones; anything else is not a route.
            let prefix = mask.leading_ones();
            if mask.count_ones() != prefix || prefix == 0 {
                return None;
            }
            Cidr::new(Ipv4Addr::from(dest), prefix as u8)
        })
        .collect()
}

/// A pool in use, as [`SimpleIpam::pools`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// The pool id given to the engine (`<address space>/<subnet>`).
    pub id: String,
    /// The subnet.
    pub subnet: Cidr,
    /// The addresses handed out, lowest first.
    pub addresses: Vec<Ipv4Addr>,
}

/// The IPAM driver.
#[derive(Debug)]
pub struct SimpleIpam {
    range: Cidr,
    pool_prefix: u8,
    route_table: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pools: BTreeMap<String, Pool>,
    /// Default pools handed out since the last call of any other kind.
    unused_default_pools: usize,
}

#[derive(Debug)]
struct Pool {
    space: String,
    cidr: Cidr,
    used: BTreeSet<u32>,
}

impl State {
    fn overlapping(&self, space: &str, cidr: &Cidr) -> Option<&str> {
        self.pools
            .iter()
            .find(|(_, p)| p.space == space && p.cidr.overlaps(cidr))
            .map(|(id, _)| id.as_str())
    }

    /// The pool for a request: `requested` if given and free, else the
    /// first `/prefix` of `range` that overlaps no pool in use and no
    /// route. The pure rule behind `RequestPool`.
    fn request_pool(
        &mut self,
        space: &str,
        requested: Option<Cidr>,
        range: Cidr,
        prefix: u8,
        routes: &[Cidr],
    ) -> Result<(String, Cidr), PluginError> {
        let cidr = match requested {
            Some(cidr) => {
                if let Some(id) = self.overlapping(space, &cidr) {
                    return Err(PluginError::new(format!(
                        "subnet {cidr} overlaps pool {id}"
                    )));
                }
                cidr
            }
            None => {
                if self.unused_default_pools >= MAX_UNUSED_DEFAULT_POOLS {
                    self.unused_default_pools = 0;
                    return Err(PluginError::new(format!(
                        "refusing to hand out another default pool: the last \
                         {MAX_UNUSED_DEFAULT_POOLS} were neither used nor released \
                         (does the engine's host route every one of them? see \
                         libnetwork#1386); create the network with --subnet"
                    )));
                }
                let mut held = 0;
                let mut routed = 0;
                let free = range.subnets(prefix).find(|c| {
                    if self.overlapping(space, c).is_some() {
                        held += 1;
                        false
                    } else if routes.iter().any(|r| r.overlaps(c)) {
                        routed += 1;
                        false
                    } else {
                        true
                    }
                });
                let Some(cidr) = free else {
                    return Err(PluginError::new(format!(
                        "no free /{} pool left in {range}: {held} in use, {routed} \
                         overlapping host routes; create the network with --subnet",
                        prefix.max(range.prefix)
                    )));
                };
                self.unused_default_pools += 1;
                cidr
            }
        };
        let id = format!("{space}/{cidr}");
        self.pools.insert(
            id.clone(),
            Pool {
                space: space.to_owned(),
                cidr,
                used: BTreeSet::new(),
            },
        );
        Ok((id, cidr))
    }

    fn pool(&mut self, id: &str) -> Result<&mut Pool, PluginError> {
        self.unused_default_pools = 0;
        self.pools
            .get_mut(id)
            .ok_or_else(|| PluginError::new(format!("no such pool: {id}")))
    }
}

impl SimpleIpam {
    /// A driver carving pools for networks created without `--subnet` from
    /// `range`: `/24` pools (see [`pool_prefix`](SimpleIpam::pool_prefix)),
    /// or the whole range when it is `/24` or smaller.
    pub fn new(range: Cidr) -> SimpleIpam {
        SimpleIpam {
            range,
            pool_prefix: DEFAULT_POOL_PREFIX,
            route_table: PathBuf::from(PROC_NET_ROUTE),
            state: Mutex::new(State::default()),
        }
    }

    /// Carves `/prefix` pools from the range instead of `/24` ones (at most
    /// `/30`; a prefix shorter than the range's gives the whole range).
    pub fn pool_prefix(mut self, prefix: u8) -> SimpleIpam {
        self.pool_prefix = prefix.min(30);
        self
    }

    /// Reads the host's routes from `path` (`/proc/net/route` format)
    /// instead of `/proc/net/route`: for tests, or for an engine in
    /// another network namespace (`/proc/<engine pid>/net/route`).
    pub fn route_table(mut self, path: impl Into<PathBuf>) -> SimpleIpam {
        self.route_table = path.into();
        self
    }

    /// The driver as a plugin, ready for a [`plugin_server::Server`].
    ///
    /// ```
    /// let ipam = simple_ipam::SimpleIpam::new("10.77.0.0/16".parse()?);
    /// let plugin = ipam.plugin()?;
    /// assert!(plugin.manifest().implements("IpamDriver"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plugin(self) -> Result<Plugin, BuildError> {
        Plugin::builder().ipam(self).build()
    }

    /// The pools in use, by id.
    pub fn pools(&self) -> Vec<PoolInfo> {
        self.state()
            .pools
            .iter()
            .map(|(id, p)| PoolInfo {
                id: id.clone(),
                subnet: p.cidr,
                addresses: p.used.iter().map(|ip| Ipv4Addr::from(*ip)).collect(),
            })
            .collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked; the state is fine.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn routes(&self) -> Vec<Cidr> {
        match std::fs::read_to_string(&self.route_table) {
            Ok(text) => parse_route_table(&text),
            Err(e) => {
                tracing::warn!(path = %self.route_table.display(), error = %e,
                    "cannot read the route table; default pools are not checked against host routes");
                Vec::new()
            }
        }
    }
}

fn parse_ip(s: &str) -> Result<u32, PluginError> {
    // Docker sends plain addresses; tolerate a CIDR suffix anyway.
    let ip = s.split('/').next().unwrap_or(s);
    ip.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| PluginError::new(format!("invalid address {s:?}")))
}

impl IpamDriver for SimpleIpam {
    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError> {
        Ok(AddressSpacesResponse {
            local_default_address_space: "local".into(),
            global_default_address_space: "global".into(),
            ..Default::default()
        })
    }

    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        if req.v6 {
            return Err(PluginError::new("simple-ipam does not serve IPv6 pools"));
        }
        if !req.sub_pool.is_empty() {
            return Err(PluginError::new("simple-ipam does not support sub-pools"));
        }
        let requested = match req.pool.as_str() {
            "" => None,
            pool => Some(pool.parse()?),
        };
        // Routes only matter for pools simple-ipam chooses.
        let routes = if requested.is_none() {
            self.routes()
        } else {
            Vec::new()
        };
        let result = self.state().request_pool(
            &req.address_space,
            requested,
            self.range,
            self.pool_prefix,
            &routes,
        );
        match result {
            Ok((pool_id, cidr)) => {
                tracing::info!(pool = %pool_id, "pool handed out");
                Ok(RequestPoolResponse {
                    pool_id,
                    pool: cidr.to_string(),
                    ..Default::default()
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, requested = %req.pool, "pool request refused");
                Err(e)
            }
        }
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        let mut state = self.state();
        state.pool(&req.pool_id)?;
        state.pools.remove(&req.pool_id);
        tracing::info!(pool = %req.pool_id, "pool released");
        Ok(())
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        let mut state = self.state();
        let pool = state.pool(&req.pool_id)?;
        let ip = if req.address.is_empty() {
            // The gateway, when libnetwork asks for one, is simply the
            // first free address.
            pool.cidr
                .hosts()
                .find(|ip| !pool.used.contains(ip))
                .ok_or_else(|| {
                    PluginError::new(format!("pool {} has no free address", pool.cidr))
                })?
        } else {
            let ip = parse_ip(&req.address)?;
            if !pool.cidr.hosts().contains(&ip) {
                let msg = format!("address {} is not usable in {}", req.address, pool.cidr);
                return Err(PluginError::new(msg));
            }
            if pool.used.contains(&ip) {
                return Err(PluginError::new(format!(
                    "address {} is in use",
                    req.address
                )));
            }
            ip
        };
        pool.used.insert(ip);
        let address = format!("{}/{}", Ipv4Addr::from(ip), pool.cidr.prefix);
        Ok(RequestAddressResponse {
            address,
            ..Default::default()
        })
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        let ip = parse_ip(&req.address)?;
        let mut state = self.state();
        // Releasing an address twice is harmless, as in Docker's own IPAM.
        state.pool(&req.pool_id)?.used.remove(&ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_rules() {
        let c = cidr("10.1.2.3/24");
        assert_eq!(c.to_string(), "10.1.2.0/24");
        assert_eq!(c.hosts().count(), 254);
        let c30 = cidr("10.1.2.4/30");
        assert_eq!(c30.hosts().count(), 2);
        assert!(c.overlaps(&c30) && c30.overlaps(&c));
        assert!(!c.overlaps(&cidr("10.1.3.0/24")));
        let all = cidr("0.0.0.0/0");
        assert!(all.overlaps(&c));
        for bad in ["10.0.0.0", "10.0.0.0/31", "x/8", "10.0.0.0/a", "::1/64"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_split_into_pools_in_address_order() {
        let pools: Vec<String> = cidr("10.0.0.0/22")
            .subnets(24)
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            pools,
            ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
        );
        // A range no larger than the pool size is one pool.
        let one: Vec<Cidr> = cidr("192.0.2.0/25").subnets(24).collect();
        assert_eq!(one, [cidr("192.0.2.0/25")]);
        assert_eq!(cidr("0.0.0.0/0").subnets(8).count(), 256);
    }

    #[test]
    fn route_tables_parse_like_the_kernel_writes_them() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            lo\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            weird\t000200C0\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0\n\
            short line\n";
        assert_eq!(
            parse_route_table(text),
            [cidr("10.0.0.0/16"), cidr("192.0.2.0/24")]
        );
        assert!(parse_route_table("").is_empty());
    }

    #[test]
    fn default_pools_are_distinct_until_released() {
        let mut s = State::default();
        let range = cidr("10.77.0.0/16");
        let (a, ca) = s.request_pool("local", None, range, 24, &[]).unwrap();
        let (b, cb) = s.request_pool("local", None, range, 24, &[]).unwrap();
        assert_eq!(
            (a.as_str(), ca),
            ("local/10.77.0.0/24", cidr("10.77.0.0/24"))
        );
        assert_eq!(
            (b.as_str(), cb),
            ("local/10.77.1.0/24", cidr("10.77.1.0/24"))
        );
        // Another address space has pools of its own.
        let (g, _) = s.request_pool("global", None, range, 24, &[]).unwrap();
        assert_eq!(g, "global/10.77.0.0/24");
        // A released pool is handed out again.
        s.pool(&a).unwrap();
        s.pools.remove(&a);
        let (again, _) = s.request_pool("local", None, range, 24, &[]).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn default_pools_skip_host_routes_and_explicit_subnets_do_not() {
        let mut s = State::default();
        let routes = [cidr("10.77.0.0/23"), cidr("10.77.2.128/25")];
        let (_, c) = s
            .request_pool("local", None, cidr("10.77.0.0/16"), 24, &routes)
            .unwrap();
        assert_eq!(c, cidr("10.77.3.0/24"));
        // The user asked for it: the route is the user's business.
        let (_, c) = s
            .request_pool(
                "local",
                Some(cidr("10.77.0.0/24")),
                cidr("10.77.0.0/16"),
                24,
                &routes,
            )
            .unwrap();
        assert_eq!(c, cidr("10.77.0.0/24"));
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let mut s = State::default();
        let range = cidr("10.77.0.0/16");
        s.request_pool("local", None, range, 24, &[]).unwrap();
        let e = s
            .request_pool("local", Some(cidr("10.77.0.128/25")), range, 24, &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.77.0.128/25 overlaps pool local/10.77.0.0/24"
        );
        // The same subnet twice is an overlap too.
        s.request_pool("local", Some(cidr("10.9.0.0/24")), range, 24, &[])
            .unwrap();
        let e = s
            .request_pool("local", Some(cidr("10.9.0.0/24")), range, 24, &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.9.0.0/24 overlaps pool local/10.9.0.0/24"
        );
        // A default pool steps around an explicit one.
        s.request_pool("local", Some(cidr("10.77.1.0/24")), range, 24, &[])
            .unwrap();
        let (_, c) = s.request_pool("local", None, range, 24, &[]).unwrap();
        assert_eq!(c, cidr("10.77.2.0/24"));
    }

    #[test]
    fn an_exhausted_range_says_why() {
        let mut s = State::default();
        let range = cidr("192.0.2.0/23");
        let routes = [cidr("192.0.3.0/24")];
        s.request_pool("local", None, range, 24, &routes).unwrap();
        let e = s
            .request_pool("local", None, range, 24, &routes)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no free /24 pool left in 192.0.2.0/23: 1 in use, 1 overlapping host routes; \
             create the network with --subnet"
        );
        // A range smaller than the pool size is named by its own prefix.
        let e = State::default()
            .request_pool(
                "local",
                None,
                cidr("192.0.2.0/24"),
                16,
                &[cidr("192.0.2.0/24")],
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no free /24 pool left in 192.0.2.0/24: 0 in use, 1 overlapping"),
            "{e}"
        );
    }

    #[test]
    fn a_request_repeated_without_use_ends_in_an_error_not_a_loop() {
        // The engine keeps every pool it rejects and asks again
        // (libnetwork#1386); a /8 range would feed it 65536 pools.
        let mut s = State::default();
        let range = cidr("10.0.0.0/8");
        let mut handed = BTreeSet::new();
        for _ in 0..MAX_UNUSED_DEFAULT_POOLS {
            let (_, c) = s.request_pool("local", None, range, 24, &[]).unwrap();
            assert!(handed.insert(c), "{c} handed out twice");
        }
        let e = s.request_pool("local", None, range, 24, &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("refusing to hand out another default pool: the last 8"),
            "{e}"
        );
        // Any other call means the engine is using its pools: the count
        // starts again, as it does after the refusal.
        let (id, _) = s.request_pool("local", None, range, 24, &[]).unwrap();
        for _ in 1..MAX_UNUSED_DEFAULT_POOLS {
            s.request_pool("local", None, range, 24, &[]).unwrap();
        }
        s.pool(&id).unwrap();
        s.request_pool("local", None, range, 24, &[]).unwrap();
        // Explicit subnets never count.
        for i in 0..=MAX_UNUSED_DEFAULT_POOLS {
            let c = Cidr::new(Ipv4Addr::new(172, 16, i as u8, 0), 24).unwrap();
            s.request_pool("local", Some(c), range, 24, &[]).unwrap();
        }
    }
}
