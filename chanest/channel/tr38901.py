"""Per-link PDPs drawn from the 3GPP TR 38.901 system-level models of NVIDIA Sionna.

:func:`generate_pdps` turns Sionna's TR 38.901 steps 1-9 (large-scale parameters, then cluster
delays and powers) into one :class:`~chanest.channel.pdp.PDP` per link: a single BS and a single UT per
batch example, both one omni element (``PanelArray`` 1x1, single V polarisation), the condition
forced with ``set_topology(..., los=True/False)``, spec version 19.2. It calls the public classes
``<Family>Scenario``, ``LSPGenerator`` and ``RaysGenerator`` directly: the K-factor a link's
rays were drawn with lives in the LSP sample, which the ``UMa``/``UMi``/... channel classes keep
private (``return_rays=True`` returns the rays but not the LSPs). Steps 10-12 (phases, antenna
fields, path loss) are skipped: they do not change delays or powers.

What Sionna's rays contain (read from ``sionna/phy/channel/tr38901/rays.py``,
``channel_coefficients.py`` and ``lsp.py`` of sionna-no-rt 2.2.0):

- ``rays.delays`` [batch, 1 BS, 1 UT, max clusters], seconds, ascending, first at 0. For LOS
  links they are already divided by the LOS scaling constant D = 0.7705 - 0.0433 K_dB +
  0.0002 K_dB^2 + 0.000017 K_dB^3 (eq. 7.5-3), i.e. they are the final delays.
- ``rays.powers`` [same], linear: the diffuse (NLOS) cluster powers only, normalised to sum 1
  *before* clusters more than 25 dB below the strongest are zeroed (so the sum is <= 1). For LOS
  links they do **not** include the specular component and are **not** scaled by 1/(K+1): the
  K-weighted powers of eq. 7.5-8 are used only for the angles. The specular ray is added in
  step 11 (``ChannelCoefficientsGenerator._step_11``) as sqrt(K/(K+1)) h_LOS + sqrt(1/(K+1))
  h_NLOS on the first (zero-delay) cluster, with every other cluster scaled by sqrt(1/(K+1)).
- Clusters beyond the scenario's cluster count have power 0 and a delay of order 1 s (last).
- ``lsp.k_factor`` [batch, 1, 1] is linear K = 10**(K_dB / 10), K_dB ~ N(mu_K, sigma_K) from
  Table 7.5-6. For NLOS links the tables carry mu_K = sigma_K = 0, so it holds 1.0 (unused).

So each PDP is built as: drop zero-power clusters, renormalise the diffuse powers to sum 1, and
for LOS scale them by 1/(K+1) and add K/(K+1) to tap 0 (kept even if its diffuse part was
pruned); ``k_factor = K`` (NLOS: 0). Each PDP sums to 1 and its specular power is
K/(K+1) of the total, as :mod:`chanest.channel.pdp` defines it (both to the 6 significant digits of
:func:`quantise`). Pruning removes < 0.6 % of the
diffuse power. Not modelled: the step-11 split of the two strongest clusters into three
sub-clusters each (delays +1.28 c_DS and +2.56 c_DS, c_DS 1.6-11 ns by scenario and carrier).

Drop geometry does not affect delays or powers (in Table 7.5-6 DS and K depend on the carrier and,
for InF, on the hall only). Topologies come from ``gen_single_sector_topology`` (UMa/UMi/RMa,
outdoor UTs) and ``sionna.sys.gen_tr38901_indoor_{office,factory}_topology`` (InH/InF), cut to
their first BS and UT. One UT per batch example makes drops independent: Sionna correlates the
LSPs of UTs that share a batch example.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

# Importing Sionna logs at DEBUG from matplotlib and pydot; keep that out of callers' logs.
for _name in ("matplotlib", "pydot", "sionna"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

import sionna.phy  # noqa: E402
from sionna.phy.channel import gen_single_sector_topology  # noqa: E402
from sionna.phy.channel.tr38901 import (  # noqa: E402
    InFScenario,
    InHScenario,
    LSPGenerator,
    PanelArray,
    RaysGenerator,
    RMaScenario,
    SystemLevelScenario,
    UMaScenario,
    UMiScenario,
    models,
)
from sionna.sys import (  # noqa: E402
    gen_tr38901_indoor_factory_topology,
    gen_tr38901_indoor_office_topology,
)

from chanest.channel.pdp import PDP, SCENARIOS, PDPError, validate_pdp  # noqa: E402

log = logging.getLogger(__name__)

#: TR 38.901 version of the parameter tables Sionna uses.
SPEC_VERSION = "19.2"

#: chanest scenario -> (Sionna scenario family, LOS?). E.g. ``"UMa_Nlos" -> ("UMa", False)``.
SIONNA_SCENARIO: dict[str, tuple[str, bool]] = {
    s: (s.split("_")[0], s.endswith("_Los")) for s in SCENARIOS
}

#: InF sub-scenarios with a Sionna calibration topology (HH is LOS-only and has none).
INF_SUBSCENARIOS: tuple[str, ...] = ("sl", "dl", "sh", "dh")

# Notes under Table 7.5-6: the carrier (GHz) in the LSP formulas is clipped from below.
_FC_FLOOR_GHZ = {"UMa": 6.0, "UMi": 2.0, "InH": 6.0, "RMa": 0.0}

# Fixed, so PDPs do not depend on sionna.phy.config. Double precision (with the rounding in
# :func:`quantise`) makes them the same on every x86-64 machine: in single precision the float32
# transcendental functions differ between CPUs by ~1e-7 relative, which moved delays by ~1e-5 ns
# and so the content keys, and thus the split, of most PDPs.
_PRECISION, _DEVICE = "double", "cpu"

#: The documented precision of generated PDPs: delays are multiples of 1 ps, powers and K-factors
#: carry 6 significant digits. Sionna's float64 round-off (~1e-15 relative) is far below both
#: grids, so a value rounds the same way on every machine (a flip needs it within ~1e-15 of a
#: rounding boundary, about one chance in 1e9 per value).
DELAY_STEP_NS, SIGNIFICANT_DIGITS = 1e-3, 6


def check_tr38901(scenario: str) -> str:
    """Return ``scenario`` if it is a TR 38.901 scenario Sionna models (:data:`SCENARIOS`)."""
    if scenario not in SIONNA_SCENARIO:
        raise PDPError(f"unknown TR 38.901 scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    return scenario


def _inf_sub(inf_subscenario: str) -> str:
    sub = inf_subscenario.lower()
    if sub not in INF_SUBSCENARIOS:
        raise PDPError(
            f"unknown InF sub-scenario {inf_subscenario!r}; expected one of {INF_SUBSCENARIOS}"
        )
    return sub


def _new_scenario(family: str, carrier_hz: float, inf_sub: str) -> SystemLevelScenario:
    """A Sionna TR 38.901 scenario (downlink, omni SISO, no topology yet)."""

    def omni() -> PanelArray:
        return PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=carrier_hz,
            precision=_PRECISION,
            device=_DEVICE,
        )

    kw = dict(
        ut_array=omni(),
        bs_array=omni(),
        direction="downlink",
        precision=_PRECISION,
        device=_DEVICE,
        spec_version=SPEC_VERSION,
    )
    if family == "UMa":
        return UMaScenario(carrier_hz, "low", **kw)
    if family == "UMi":
        return UMiScenario(carrier_hz, "low", **kw)
    if family == "RMa":
        return RMaScenario(carrier_hz, **kw)
    if family == "InH":
        return InHScenario(carrier_hz, "open", **kw)
    return InFScenario(carrier_hz, inf_sub, **kw)


def _topology(family: str, batch: int, inf_sub: str) -> tuple[torch.Tensor, ...]:
    """``batch`` single-link drops: (ut_loc, bs_loc, ut_orient, bs_orient, ut_vel, in_state),
    shapes [batch, 1, 3] ([batch, 1] for in_state), metres / radians / m/s."""
    kw = dict(precision=_PRECISION, device=_DEVICE)
    if family in ("UMa", "UMi", "RMa"):
        return gen_single_sector_topology(batch, 1, family.lower(), indoor_probability=0.0, **kw)
    if family == "InH":
        full = gen_tr38901_indoor_office_topology(batch, 1, **kw)
    else:
        full = gen_tr38901_indoor_factory_topology(inf_sub.upper(), batch, 1, **kw)
    return tuple(t[:, :1] for t in tuple(full)[:6])  # first BS and first UT


@contextmanager
def _sionna_seed(seed: int) -> Iterator[None]:
    """Seed Sionna's RNGs (``sionna.phy.config.seed``, which also reseeds torch's global
    generators); restore all of them, and Sionna's seed, on exit."""
    cfg = sionna.phy.config
    old_seed = cfg.seed
    old_torch = {d: cfg.torch_rng(d).get_state() for d in cfg.available_devices}
    old_np, old_py = cfg.np_rng.bit_generator.state, cfg.py_rng.getstate()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        cfg.seed = seed
        try:
            yield
        finally:
            cfg.seed = old_seed
            for d, state in old_torch.items():
                cfg.torch_rng(d).set_state(state)
            cfg.np_rng.bit_generator.state = old_np
            cfg.py_rng.setstate(old_py)


def quantise(x: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """``x`` (> 0, any shape) rounded to ``digits`` significant decimal digits."""
    x = np.asarray(x, dtype=np.float64)
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(x)))
    return np.round(x * scale) / scale


def _link_pdp(delays_s: np.ndarray, powers: np.ndarray, k: float, where: str) -> PDP:
    """One link's PDP from its cluster delays (s) and diffuse powers, (n_clusters,) each, and its
    linear K (0 for NLOS); see the module docstring."""
    keep = powers > 0
    keep[0] |= k > 0  # tap 0 carries the specular component
    d, p = delays_s[keep], powers[keep] / powers[keep].sum()
    if k > 0:
        p = p / (k + 1.0)
        p[0] += k / (k + 1.0)
    d_ns = np.round((d - d[0]) * 1e9 / DELAY_STEP_NS) * DELAY_STEP_NS
    p = quantise(p)
    validate_pdp(d_ns, p, where)
    return PDP(d_ns * 1e-9, p, float(quantise(k)) if k > 0 else 0.0)


def generate_pdps(
    scenario: str,
    n_drops: int,
    carrier_hz: float,
    seed: int,
    inf_subscenario: str = "dh",
    batch_size: int = 256,
) -> list[PDP]:
    """Draw ``n_drops`` independent single-link PDPs of ``scenario`` from Sionna's TR 38.901 model.

    scenario: one of :data:`chanest.channel.pdp.SCENARIOS` (``"UMa_Los"``, ...).
    carrier_hz: carrier frequency, Hz (sets the frequency-dependent DS of Table 7.5-6).
    seed: seeds Sionna (global RNG state is restored afterwards); the same seed and batch_size
        give the same PDPs.
    inf_subscenario: InF clutter/BS-height case, one of :data:`INF_SUBSCENARIOS` (InF only).
    batch_size: links per Sionna call.

    Returns ``n_drops`` PDPs: delays in seconds (ascending, first 0, on a 1 ps grid), linear powers
    summing to 1 (to 6 significant digits each), ``k_factor`` the link's linear Rician K (LOS, 6
    significant digits) or 0 (NLOS). Computed in float64 and rounded to that precision, they are
    the same on any machine (see :data:`DELAY_STEP_NS`). Raises :class:`PDPError` on an
    unknown scenario or sub-scenario.
    """
    family, los = SIONNA_SCENARIO[check_tr38901(scenario)]
    inf_sub = _inf_sub(inf_subscenario)
    if n_drops < 1 or batch_size < 1:
        raise ValueError(f"n_drops and batch_size must be >= 1, got {n_drops}, {batch_size}")
    t0 = time.perf_counter()
    pdps: list[PDP] = []
    with _sionna_seed(seed):
        sc = _new_scenario(family, carrier_hz, inf_sub)
        lsp_gen, ray_gen = LSPGenerator(sc), RaysGenerator(sc)
        for start in range(0, n_drops, batch_size):
            batch = min(batch_size, n_drops - start)
            for obj in (sc, lsp_gen, ray_gen):
                obj.reset_topology()  # the batch size may change
            sc.set_topology(*_topology(family, batch, inf_sub), los=los)
            lsp_gen.topology_updated_callback()
            ray_gen.topology_updated_callback()
            lsp = lsp_gen()
            rays = ray_gen(lsp)
            delays = rays.delays[:, 0, 0].double().numpy()  # [batch, max clusters], s
            powers = rays.powers[:, 0, 0].double().numpy()  # [batch, max clusters], linear
            k = lsp.k_factor[:, 0, 0].double().numpy() if los else np.zeros(batch)
            for i in range(batch):
                where = f"{scenario} drop {start + i}"
                pdps.append(_link_pdp(delays[i], powers[i], float(k[i]), where))
            log.debug("%s: %d/%d drops", scenario, len(pdps), n_drops)
    log.info("%s: %d PDPs in %.2f s", scenario, n_drops, time.perf_counter() - t0)
    return pdps


def table_7_5_6(scenario: str, carrier_hz: float, inf_subscenario: str = "dh") -> dict:
    """Table 7.5-6 delay-spread and K-factor statistics, as Sionna parameterises them.

    UMa/UMi/RMa/InH: read from Sionna's JSON files (``tr38901/models/v19_2/<Family>_<LoS|NLoS>
    .json``): mu = a log10(b + fc) + c with fc in GHz clipped as noted under the table.
    InF: its JSON carries no DS/K, Sionna hard-codes Table 7.5-6 Part 3 (transcribed here),
    lgDS = log10(26 V/S + 14) - 9.35 (LOS, sigma 0.15), log10(30 V/S + 32) - 9.44 (NLOS,
    sigma 0.19), K 7 +- 8 dB, with V/S of the sub-scenario's default hall in Sionna.

    Returns ``mu_lgDS``, ``sigma_lgDS`` (log10 of seconds), ``ds_median_s`` (10**mu_lgDS, s),
    and ``mu_K_dB``, ``sigma_K_dB`` (dB; None for NLOS).
    """
    family, los = SIONNA_SCENARIO[check_tr38901(scenario)]
    fc = carrier_hz / 1e9
    if family == "InF":
        hall = _new_scenario(family, carrier_hz, _inf_sub(inf_subscenario)).hall_dimensions
        length, width, height = hall.tolist()
        v_s = length * width * height / (2 * (length * width + length * height + width * height))
        if los:
            mu, sigma = math.log10(26 * v_s + 14) - 9.35, 0.15
        else:
            mu, sigma = math.log10(30 * v_s + 32) - 9.44, 0.19
        mu_k, sigma_k = 7.0, 8.0
    else:
        name = f"{family}_{'LoS' if los else 'NLoS'}.json"
        par = models.load_json(models.parameter_file(name, SPEC_VERSION))
        fc = max(fc, _FC_FLOOR_GHZ[family])
        mu, sigma = (
            par[f"{p}DSa"] * math.log10(par[f"{p}DSb"] + fc) + par[f"{p}DSc"]
            for p in ("mu", "sigma")
        )
        mu_k, sigma_k = par["muK"], par["sigmaK"]
    return {
        "mu_lgDS": mu,
        "sigma_lgDS": sigma,
        "ds_median_s": 10.0**mu,
        "mu_K_dB": float(mu_k) if los else None,
        "sigma_K_dB": float(sigma_k) if los else None,
    }
