//! simple-ipam: an IPAM plugin that hands out IPv4 addresses from pools,
//! the example for network-side plugins built with `plugin-server`.
//!
//! `docker network create --ipam-driver simple-ipam net1` gets the
//! configured default pool; `--subnet 10.9.0.0/24` gets that subnet. Pools
//! are reference-counted by id (`<address space>/<cidr>`), so networks
//! asking for the same subnet share it; addresses are handed out lowest
//! first, never the network or broadcast address, never twice. Everything
//! is in memory.
//!
//! Errors are plugin errors (`500 {"Err": …}`): IPv6 or sub-pool requests,
//! malformed or overlapping subnets, unknown pool ids, an address outside
//! its pool or already taken, a full pool.
//!
//! [`cli`] is the command line the `simple-ipam` binary runs.
//!
//! **What it must never do:** touch the host's network configuration.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use plugin_server::ipam::*;
use plugin_server::{BuildError, Plugin, PluginError};

pub mod cli;

/// An IPv4 subnet in CIDR form, `/30` or larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The usable host addresses: all but the network and broadcast ones.
    fn hosts(&self) -> std::ops::RangeInclusive<u32> {
        (self.network + 1)..=(self.network | !self.mask()) - 1
    }

    fn overlaps(&self, other: &Cidr) -> bool {
        let mask = self.mask() & other.mask();
        self.network & mask == other.network & mask
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
        let cidr = Cidr { network: 0, prefix };
        Ok(Cidr {
            network: u32::from(ip) & cidr.mask(),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// The IPAM driver.
#[derive(Debug)]
pub struct SimpleIpam {
    default_pool: Cidr,
    pools: Mutex<BTreeMap<String, Pool>>,
}

#[derive(Debug)]
struct Pool {
    cidr: Cidr,
    refs: usize,
    used: BTreeSet<u32>,
}

impl SimpleIpam {
    /// A driver handing out `default_pool` to networks created without
    /// `--subnet`.
    pub fn new(default_pool: Cidr) -> SimpleIpam {
        SimpleIpam {
            default_pool,
            pools: Mutex::new(BTreeMap::new()),
        }
    }

    /// The driver as a plugin, ready for a [`plugin_server::Server`].
    pub fn plugin(self) -> Result<Plugin, BuildError> {
        Plugin::builder().ipam(self).build()
    }

    fn pools(&self) -> MutexGuard<'_, BTreeMap<String, Pool>> {
        // A poisoned lock only means another call panicked; the map is fine.
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn no_such_pool(id: &str) -> PluginError {
    PluginError::new(format!("no such pool: {id}"))
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
        let cidr = match req.pool.as_str() {
            "" => self.default_pool,
            pool => pool.parse()?,
        };
        let pool_id = format!("{}/{cidr}", req.address_space);
        let mut pools = self.pools();
        if let Some(pool) = pools.get_mut(&pool_id) {
            pool.refs += 1;
        } else if let Some((id, _)) = pools.iter().find(|(_, p)| p.cidr.overlaps(&cidr)) {
            return Err(PluginError::new(format!(
                "subnet {cidr} overlaps pool {id}"
            )));
        } else {
            pools.insert(
                pool_id.clone(),
                Pool {
                    cidr,
                    refs: 1,
                    used: BTreeSet::new(),
                },
            );
        }
        Ok(RequestPoolResponse {
            pool_id,
            pool: cidr.to_string(),
            ..Default::default()
        })
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        let mut pools = self.pools();
        let pool = pools
            .get_mut(&req.pool_id)
            .ok_or_else(|| no_such_pool(&req.pool_id))?;
        pool.refs -= 1;
        if pool.refs == 0 {
            pools.remove(&req.pool_id);
        }
        Ok(())
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        let mut pools = self.pools();
        let pool = pools
            .get_mut(&req.pool_id)
            .ok_or_else(|| no_such_pool(&req.pool_id))?;
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
        let mut pools = self.pools();
        let pool = pools
            .get_mut(&req.pool_id)
            .ok_or_else(|| no_such_pool(&req.pool_id))?;
        // Releasing an address twice is harmless, as in Docker's own IPAM.
        pool.used.remove(&ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_rules() {
        let c: Cidr = "10.1.2.3/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.1.2.0/24");
        assert_eq!(c.hosts().count(), 254);
        let c30: Cidr = "10.1.2.4/30".parse().unwrap();
        assert_eq!(c30.hosts().count(), 2);
        assert!(c.overlaps(&c30) && c30.overlaps(&c));
        assert!(!c.overlaps(&"10.1.3.0/24".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.overlaps(&c));
        for bad in ["10.0.0.0", "10.0.0.0/31", "x/8", "10.0.0.0/a", "::1/64"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
