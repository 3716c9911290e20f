import math

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ega_jax import losses


def test_relaxed_kl_by_hand():
    mu = jnp.array([[0.5, 3.0, -2.5]])
    logvar = jnp.log(jnp.array([[1.0, 4.0, 0.25]]))
    # dim 1: |mu| < mu0 and sigma = 1: nothing.  dim 2: (9 - 4) + 4 - ln 4 - 1.  dim 3: (6.25 - 4) + 0.25 - ln 0.25 - 1
    expected = 0.0 + (5 + 4 - math.log(4) - 1) + (2.25 + 0.25 - math.log(0.25) - 1)
    assert float(losses.relaxed_kl(mu, logvar, 2.0)[0]) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(9.5)   # the ln 4 terms cancel


def test_relaxed_kl_with_mu0_zero_is_eq2_and_zero_at_the_prior():
    rng = np.random.default_rng(0)
    mu, logvar = jnp.asarray(rng.normal(size=(5, 7))), jnp.asarray(rng.normal(size=(5, 7)))
    np.testing.assert_allclose(losses.relaxed_kl(mu, logvar, 0.0), losses.gaussian_kl(mu, logvar), rtol=1e-6)
    # Eq. 2 is twice the textbook KL(N(mu, sigma^2) || N(0, 1)).
    textbook = 0.5 * np.sum(np.asarray(mu) ** 2 + np.exp(logvar) - np.asarray(logvar) - 1, axis=-1)
    np.testing.assert_allclose(losses.gaussian_kl(mu, logvar), 2 * textbook, rtol=1e-5)
    inside = jnp.full((1, 4), 1.9)
    assert float(losses.relaxed_kl(inside, jnp.zeros((1, 4)), 2.0)[0]) == 0.0


@pytest.mark.parametrize("mu0", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_embedding_capacity_matches_monte_carlo_of_its_definition(mu0):
    """C = E_{mu~U(-mu0,mu0)}[KL(q||p) / H(q,p)], q = N(mu, 1), p = N(0, 1), both estimated by sampling z ~ q."""
    rng = np.random.default_rng(int(mu0 * 10))
    mus = rng.uniform(-mu0, mu0, size=(4000, 1))
    z = mus + rng.normal(size=(4000, 400))
    log_q = -0.5 * np.log(2 * np.pi) - 0.5 * (z - mus) ** 2
    log_p = -0.5 * np.log(2 * np.pi) - 0.5 * z ** 2
    kl = np.mean(log_q - log_p, axis=1)
    cross_entropy = np.mean(-log_p, axis=1)
    mc = np.mean(kl / cross_entropy)
    assert float(losses.embedding_capacity(mu0)) == pytest.approx(mc, abs=0.01)


def test_embedding_capacity_shape():
    c = losses.embedding_capacity(np.array([0.0, 1.0, 2.0, 4.0, 8.0, 100.0]))
    assert c[0] == 0.0 and np.all(np.diff(c) > 0) and c[-1] < 1.0
    assert float(losses.embedding_capacity(2.0)) == pytest.approx(0.2665, abs=1e-3)


def test_kl_weight_schedules():
    lin = [float(losses.kl_weight(s, "linear", 10, 100)) for s in (0, 10, 60, 110, 500)]
    assert lin == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    sig = [float(losses.kl_weight(s, "sigmoid", 0, 100)) for s in range(0, 101, 10)]
    assert sig[0] == 0.0 and sig[-1] == 1.0 and sig[5] == pytest.approx(0.5) and np.all(np.diff(sig) > 0)
    assert float(losses.kl_weight(0, "constant", 0, 100)) == 1.0
    kl = ml_collections.ConfigDict(dict(weight=0.5, anneal="linear", anneal_start=0, anneal_steps=4))
    assert [float(losses.kl_alpha(s, kl)) for s in (0, 2, 4, 9)] == pytest.approx([0.0, 0.25, 0.5, 0.5])
    with pytest.raises(ValueError, match="unknown KL annealing"):
        losses.kl_weight(0, "cosine", 0, 10)


def test_cosine_distance():
    a = jnp.array([[1.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    b = jnp.array([[0.0, 5.0], [-2.0, -4.0], [6.0, 8.0]])
    np.testing.assert_allclose(losses.cosine_distance(a, b), [1.0, 2.0, 0.0], atol=1e-6)


def test_sequence_nll_by_hand():
    logits = jnp.zeros((1, 3, 5))                        # uniform over 5 characters
    targets = jnp.array([[1, 2, 0]])
    mask = jnp.array([[1.0, 1.0, 0.0]])
    assert float(losses.sequence_nll(logits, targets, mask)[0]) == pytest.approx(2 * math.log(5), rel=1e-6)
    peaked = jnp.zeros((1, 1, 5)).at[0, 0, 3].set(100.0)
    assert float(losses.sequence_nll(peaked, jnp.array([[3]]), jnp.ones((1, 1)))[0]) == pytest.approx(0, abs=1e-6)


def test_active_units():
    mu = np.array([[0.0, 1.0, 5.0], [0.0, -1.0, 5.05], [0.0, 1.0, 5.0], [0.0, -1.0, 4.95]])
    assert losses.active_units(mu.sum(0), (mu ** 2).sum(0), len(mu)) == 1   # only dim 2 varies enough


def test_gradient_penalty_by_hand_on_sequences():
    """A critic linear in (L, V) sequences has gradient W at every input: penalty (|W|_F - 1)^2,
    whatever the interpolates; a quadratic critic gives each row the norm at its own interpolate."""
    import jax
    w = jnp.zeros((2, 3)).at[0, 0].set(3.0).at[1, 2].set(4.0)             # |W|_F = 5
    real, fake = jnp.ones((4, 2, 3)), jnp.zeros((4, 2, 3))
    gp = losses.gradient_penalty(lambda x: jnp.sum(x * w, axis=(1, 2)), real, fake, jax.random.PRNGKey(0))
    assert float(gp) == pytest.approx((5.0 - 1.0) ** 2)
    # critic(x) = sum x^2: the gradient at interpolate eps_i * real is 2 eps_i * ones(2, 3).
    key = jax.random.PRNGKey(1)
    eps = np.asarray(jax.random.uniform(key, (4, 1, 1))).ravel()
    gp = losses.gradient_penalty(lambda x: jnp.sum(x ** 2, axis=(1, 2)), real, fake, key)
    assert float(gp) == pytest.approx(np.mean((2 * eps * math.sqrt(6) - 1) ** 2), rel=1e-5)
