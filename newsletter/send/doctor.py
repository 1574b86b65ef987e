"""`newsletter doctor`: will the mailbox providers trust what we send? Each check asks DNS
(dnspython, the only owner; the one network use of the command) or reads the configuration,
and says what to publish when it fails.

Gmail's and Yahoo's bulk-sender rules ask for SPF and DKIM, a DMARC record aligned with the
From domain, one-click unsubscribe and HTTPS links; a bounce domain without an MX loses the
bounces. The organisational domain (for DMARC alignment and "domains the publisher
controls") is taken as the last two labels of a name: there is no public-suffix list here,
so `example.co.uk` is not told apart from `co.uk`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from functools import partial
from typing import Literal

from newsletter.config import DKIM_KEY_FILE_ENV, Config, Environment
from newsletter.errors import ConfigError

SENDGRID_SPF = "sendgrid.net"
SPF_LOOKUPS = 10  # RFC 7208 4.6.4: more DNS look-ups than this is a permanent error
# public mailbox providers: nobody but the provider controls these domains (and their
# DMARC p=reject makes mail "from" them that they did not send go to spam or nowhere)
MAILBOX_PROVIDERS = frozenset(
    "gmail.com googlemail.com yahoo.com ymail.com outlook.com hotmail.com live.com msn.com "
    "aol.com icloud.com me.com mac.com gmx.com gmx.net web.de mail.com proton.me "
    "protonmail.com yandex.com qq.com 163.com".split()
)

Backend = Literal["smtp", "sendgrid", "outbox"]


@dataclass(frozen=True)
class Check:
    ok: bool
    topic: str  # SPF, DKIM, DMARC, bounces, From, Reply-To, List-Unsubscribe, HTTPS
    text: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.topic}: {self.text}"


class DnsFailure(Exception):
    """DNS gave no answer at all (a timeout, no server): not the same as "no record"."""


Lookup = Callable[[str, str], list[str]]


def resolver_lookup(nameserver: str | None = None, timeout: float = 5.0) -> Lookup:
    """A look-up function over dnspython: (name, type) → the answers as text (TXT strings
    joined), [] for no such name or record; DnsFailure when DNS does not answer. With
    `nameserver` (`HOST` or `HOST:PORT`) it asks that server, else the system's."""
    import dns.exception
    import dns.resolver

    if nameserver:
        host, port = server_address(nameserver)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    server = nameserver or "the system's DNS server"
    silent: list[str] = []  # once DNS did not answer, the other checks do not wait for it again

    def lookup(name: str, rdtype: str) -> list[str]:
        if silent:
            raise DnsFailure(f"not checked: {silent[0]}")
        try:
            answer = resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            why = "no answer in time" if isinstance(exc, dns.exception.Timeout) else "refused"
            silent.append(f"{server} did not answer ({why})")
            raise DnsFailure(f"{server} did not answer for {name} {rdtype} ({why})") from None
        return [_text(record) for record in answer]

    return lookup


def server_address(nameserver: str) -> tuple[str, int]:
    """`HOST`, `HOST:PORT`, `[IPv6]:PORT` or a bare IPv6 address → (host, port)."""
    if nameserver.startswith("[") and "]" in nameserver:
        host, _, rest = nameserver[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 53
    host, sep, port = nameserver.rpartition(":")
    if sep and ":" not in host and port.isdigit():
        return host, int(port)
    return nameserver, 53


def _text(record: object) -> str:
    strings = getattr(record, "strings", None)
    if strings is not None:  # TXT: the strings of one record are one value (RFC 7208 3.3)
        return b"".join(strings).decode("utf-8", "replace")
    exchange = getattr(record, "exchange", None)
    if exchange is not None:  # MX
        return str(exchange)
    return str(record)


def _domain(address: str) -> str:
    return parseaddr(address)[1].rsplit("@", 1)[-1].lower()


def _org(domain: str) -> str:
    return ".".join(domain.rstrip(".").split(".")[-2:])


def _aligned(a: str, b: str) -> bool:
    """DMARC's relaxed alignment: the same organisational domain."""
    return _org(a) == _org(b)


def diagnose(
    config: Config,
    lookup: Lookup,
    backend: Backend = "smtp",
    environment: Environment | None = None,
) -> list[Check]:
    """Every check, in the order printed."""
    environment = environment or Environment()
    senders = list(dict.fromkeys(nl.sender for nl in config.newsletters.values()))
    from_domains = list(dict.fromkeys(_domain(s) for s in senders))
    bounce = getattr(config.smtp, "bounce_address", None)  # [smtp] bounce_address (VERP)
    envelope = [_domain(bounce)] if bounce and backend == "smtp" else from_domains
    checks: list[Check] = []
    for domain in envelope:
        checks.append(_guard("SPF", partial(_spf, config, lookup, backend, domain)))
    checks.append(_guard("DKIM", partial(_dkim, config, lookup, backend, environment)))
    for domain in from_domains:
        checks.append(_guard("DMARC", partial(_dmarc, config, lookup, backend, domain, envelope)))
    bounce_domains = [_domain(bounce)] if bounce else from_domains
    for domain in bounce_domains:
        checks.append(_guard("bounces", partial(_mx, lookup, domain, bounce)))
    checks.extend(_own_domains(config))
    checks.append(
        Check(
            True,
            "List-Unsubscribe",
            "one-click (RFC 8058: List-Unsubscribe-Post) and a mailto on every message",
        )
    )
    checks.append(_https(config))
    return checks


def _guard(topic: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except DnsFailure as exc:
        return Check(False, topic, str(exc))


# -- SPF -------------------------------------------------------------------------------------


def _spf_record(lookup: Lookup, domain: str) -> list[str]:
    return [r for r in lookup(domain, "TXT") if r.lower().split(" ", 1)[0] == "v=spf1"]


def _spf(config: Config, lookup: Lookup, backend: Backend, domain: str) -> Check:
    records = _spf_record(lookup, domain)
    if backend == "sendgrid":
        wanted, add = "SendGrid", f"include:{SENDGRID_SPF}"
    else:
        wanted, add = f"the relay {config.smtp.host}", f"a:{config.smtp.host}"
    if not records:
        return Check(False, "SPF", f'no SPF record for {domain}: publish TXT "v=spf1 {add} ~all"')
    if len(records) > 1:
        return Check(
            False,
            "SPF",
            f"{len(records)} SPF records for {domain}: receivers reject that; keep one",
        )
    if backend == "sendgrid":
        if _spf_includes(lookup, records[0], SENDGRID_SPF, [0]):
            return Check(True, "SPF", f"{domain} authorises SendGrid (include:{SENDGRID_SPF})")
        return Check(
            False, "SPF", f'{domain} does not authorise SendGrid: add "{add}" to its record'
        )
    addresses = _addresses(lookup, config.smtp.host)
    if not addresses:
        return Check(False, "SPF", f"the relay {config.smtp.host} has no address in DNS")
    counter = [0]
    for address in addresses:
        if _spf_allows(lookup, domain, records[0], address, counter):
            return Check(True, "SPF", f"{domain} authorises {wanted} ({address})")
    shown = ", ".join(str(a) for a in addresses)
    return Check(
        False, "SPF", f'{domain} does not authorise {wanted} ({shown}): add "{add}" to its record'
    )


def _addresses(lookup: Lookup, host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found = [*lookup(host, "A"), *lookup(host, "AAAA")]
    return [ipaddress.ip_address(a) for a in found]


def _spf_terms(record: str) -> list[str]:
    return record.split()[1:]


def _spf_includes(lookup: Lookup, record: str, target: str, counter: list[int]) -> bool:
    for term in _spf_terms(record):
        name = term.lstrip("+").lower()
        if name.startswith(("include:", "redirect=")):
            included = name.split(":", 1)[-1].split("=", 1)[-1]
            if included == target:
                return True
            counter[0] += 1
            if counter[0] > SPF_LOOKUPS:
                return False
            for inner in _spf_record(lookup, included):
                if _spf_includes(lookup, inner, target, counter):
                    return True
    return False


def _spf_allows(
    lookup: Lookup,
    domain: str,
    record: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    counter: list[int],
) -> bool:
    """Whether `record` (of `domain`) passes `address`: ip4, ip6, a, mx, include and
    redirect with the "+" qualifier (the default); other qualifiers never authorise."""
    redirect = None
    for term in _spf_terms(record):
        qualifier = term[0] if term[0] in "+-~?" else "+"
        term = term.lstrip("+-~?")
        lower = term.lower()
        if lower.startswith("redirect="):
            redirect = term.split("=", 1)[1]
            continue
        mechanism, _, argument = lower.partition(":")
        mechanism, _, cidr = mechanism.partition("/")
        if "/" in argument:
            argument, cidr = argument.split("/", 1)
        matched = False
        if mechanism in ("ip4", "ip6"):
            try:
                matched = address in ipaddress.ip_network(term.split(":", 1)[1], strict=False)
            except ValueError:
                matched = False
        elif mechanism in ("a", "mx", "include"):
            counter[0] += 1
            if counter[0] > SPF_LOOKUPS:
                return False
            target = argument or domain
            if mechanism == "include":
                matched = any(
                    _spf_allows(lookup, target, inner, address, counter)
                    for inner in _spf_record(lookup, target)
                )
            else:
                hosts = [target] if mechanism == "a" else lookup(target, "MX")
                for host in hosts:
                    for found in _addresses(lookup, host.rstrip(".")):
                        bits = int(cidr) if cidr else found.max_prefixlen
                        if address in ipaddress.ip_network(f"{found}/{bits}", strict=False):
                            matched = True
        elif mechanism == "all":
            matched = True
        if matched:
            return qualifier == "+"
    if redirect:
        counter[0] += 1
        return counter[0] <= SPF_LOOKUPS and any(
            _spf_allows(lookup, redirect, inner, address, counter)
            for inner in _spf_record(lookup, redirect)
        )
    return False


# -- DKIM ------------------------------------------------------------------------------------


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def _dkim(config: Config, lookup: Lookup, backend: Backend, environment: Environment) -> Check:
    if config.dkim is None:
        if backend == "sendgrid":
            domain = _domain(next(iter(config.newsletters.values())).sender)
            name = f"s1._domainkey.{domain}"
            if any(_tags(r).get("p") for r in lookup(name, "TXT")):
                return Check(True, "DKIM", f"SendGrid signs: {name} holds its key")
            return Check(
                False,
                "DKIM",
                f"no key at {name}: set up SendGrid's domain authentication (its CNAME records)",
            )
        return Check(
            False,
            "DKIM",
            "not signing: run 'newsletter dkim keygen --selector S', publish its record, "
            "and set [dkim] and " + DKIM_KEY_FILE_ENV,
        )
    from newsletter.send import dkim

    name = f"{config.dkim.selector}._domainkey.{config.dkim.domain}"
    try:
        signer = dkim.load(config, environment)
    except ConfigError as exc:
        return Check(False, "DKIM", str(exc))
    assert signer is not None
    expected = dkim.public_record(signer.key)
    records = [r for r in lookup(name, "TXT") if "p" in _tags(r)]
    publish = f'publish TXT "{expected}" (newsletter dkim keygen prints it in 255-octet strings)'
    if not records:
        return Check(False, "DKIM", f"no record at {name}: {publish}")
    wanted = _tags(expected)["p"]
    if any(_tags(r)["p"] == wanted for r in records):
        misaligned = [
            _domain(nl.sender)
            for nl in config.newsletters.values()
            if not _aligned(_domain(nl.sender), config.dkim.domain)
        ]
        if misaligned:
            return Check(
                False,
                "DKIM",
                f"{name} matches the key, but d={config.dkim.domain} does not align with From "
                f"{', '.join(dict.fromkeys(misaligned))}: sign with the From domain",
            )
        return Check(True, "DKIM", f"{name} matches the configured key")
    if any(_tags(r)["p"] == "" for r in records):
        return Check(False, "DKIM", f"{name} is revoked (empty p=): {publish}")
    return Check(False, "DKIM", f"{name} holds another key than {DKIM_KEY_FILE_ENV}'s: {publish}")


# -- DMARC -----------------------------------------------------------------------------------


def _dmarc(
    config: Config, lookup: Lookup, backend: Backend, domain: str, envelope: list[str]
) -> Check:
    found = None
    for name in dict.fromkeys([f"_dmarc.{domain}", f"_dmarc.{_org(domain)}"]):
        records = [r for r in lookup(name, "TXT") if r.replace(" ", "").startswith("v=DMARC1")]
        if records:
            found = (name, records[0])
            break
    if found is None:
        return Check(
            False,
            "DMARC",
            f'no record at _dmarc.{domain}: publish TXT "v=DMARC1; p=none; '
            f'rua=mailto:dmarc-reports@{domain}"',
        )
    name, record = found
    policy = _tags(record).get("p", "none")
    dkim_aligned = (
        config.dkim is not None and _aligned(config.dkim.domain, domain)
    ) or backend == "sendgrid"
    spf_aligned = any(_aligned(e, domain) for e in envelope)
    how = [w for w, ok in (("DKIM", dkim_aligned), ("SPF", spf_aligned)) if ok]
    if not how:
        return Check(
            False,
            "DMARC",
            f"{name} (p={policy}) exists, but neither DKIM nor the envelope sender aligns "
            f"with From's {domain}: sign with d={domain}",
        )
    return Check(
        True,
        "DMARC",
        f"{name} p={policy}; {' and '.join(how)} align{'' if len(how) > 1 else 's'} "
        f"with From's {domain}",
    )


# -- the rest --------------------------------------------------------------------------------


def _mx(lookup: Lookup, domain: str, bounce: str | None) -> Check:
    where = f"bounces to {bounce}" if bounce else f"bounces to the From addresses at {domain}"
    hosts = [h.rstrip(".") for h in lookup(domain, "MX")]
    if not hosts:
        return Check(False, "bounces", f"no MX for {domain}: publish one ({where} are lost)")
    if hosts == [""]:
        return Check(
            False, "bounces", f"{domain} has a null MX (it takes no mail): {where} are lost"
        )
    return Check(True, "bounces", f"{domain} has an MX ({', '.join(sorted(hosts))})")


def _own_domains(config: Config) -> list[Check]:
    """From and Reply-To on the publisher's own domains: the same organisational domain as
    the publication's site (or the DKIM domain), and never a public mailbox provider's."""
    from urllib.parse import urlsplit

    own = {_org(urlsplit(config.publication.base_url).hostname or "")}
    if config.dkim is not None:
        own.add(_org(config.dkim.domain))
    checks = []
    for topic, addresses in (
        ("From", [nl.sender for nl in config.newsletters.values()]),
        ("Reply-To", [nl.reply_to for nl in config.newsletters.values() if nl.reply_to]),
    ):
        if not addresses:
            continue
        wrong = []
        for address in dict.fromkeys(parseaddr(a)[1] for a in addresses):
            domain = _domain(address)
            if domain in MAILBOX_PROVIDERS:
                wrong.append(f"{address} (a mailbox provider's domain)")
            elif _org(domain) not in own:
                wrong.append(f"{address} (not {' or '.join(sorted(own))})")
        if wrong:
            checks.append(
                Check(False, topic, f"{', '.join(wrong)}: use an address on your own domain")
            )
        else:
            checks.append(Check(True, topic, f"on {' and '.join(sorted(own))}"))
    return checks


def _https(config: Config) -> Check:
    from urllib.parse import urlsplit

    url = urlsplit(config.publication.base_url)
    if url.scheme == "https":
        return Check(True, "HTTPS", f"unsubscribe links go to https://{url.netloc}/unsubscribe/…")
    return Check(
        False,
        "HTTPS",
        f"unsubscribe links go to {url.scheme}://{url.netloc}: serve it over HTTPS and make "
        "[publication] base_url https://",
    )
