"""Route units of work to their own models: templated URIs, resolved once, with a fallback.

A job that keeps one model per segment (or per any key) names them with a URI template,
``models:/demand_{segment}@champion`` or ``models:/demand@{segment}`` (a registered-model alias
per key). On the driver every distinct key present in the source is turned into its URI and
resolved once; a key whose model does not exist gets the fallback model, or none (its rows are
then rejected with reason ``no_model``). Models with the same content are resolved and shipped
once, whatever the number of keys that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from batch_scoring.jobs.model_resolution import ModelNotFoundError, ResolvedModel


@dataclass(frozen=True)
class Route:
    """The model of one key: the URI tried, the model used (None: no model), whether fallback."""

    key: tuple
    uri: str
    model: ResolvedModel | None
    fallback: bool = False


def route_uri(template: str, by: Sequence[str], key: tuple) -> str:
    """Fill ``template``'s ``{column}`` placeholders with the key's values.

    Raises:
        KeyError: when the template names a column that is not in ``by``.
    """
    return template.format(**{name: value for name, value in zip(by, key)})


def resolve_routes(
    keys: Iterable[tuple],
    by: Sequence[str],
    template: str,
    fallback_uri: str | None,
    resolve: Callable[[str], ResolvedModel],
) -> dict[tuple, Route]:
    """Resolve the model of every key, each distinct URI once.

    Args:
        keys: distinct non-null key tuples present in the source.
        by: the key columns, in the order of the tuples.
        template: URI template (see the module docstring).
        fallback_uri: model for keys whose templated model does not exist, or None.
        resolve: resolves one URI (allow-list, download, hash), raising
            :class:`ModelNotFoundError` when the model does not exist.

    Returns:
        key -> :class:`Route`.

    Raises:
        ModelResolutionError: for any failure other than a missing model (not allowed,
            unreachable server), and when the fallback model itself cannot be resolved.
    """
    resolved: dict[str, ResolvedModel | None] = {}

    def lookup(uri: str) -> ResolvedModel | None:
        if uri not in resolved:
            try:
                resolved[uri] = resolve(uri)
            except ModelNotFoundError:
                resolved[uri] = None
        return resolved[uri]

    routes = {}
    for key in keys:
        uri = route_uri(template, by, key)
        model = lookup(uri)
        if model is None and fallback_uri:
            routes[key] = Route(key, fallback_uri, _required(fallback_uri, resolve, resolved), True)
        else:
            routes[key] = Route(key, uri, model)
    return routes


def _required(uri: str, resolve, resolved: dict) -> ResolvedModel:
    if resolved.get(uri) is None:
        resolved[uri] = resolve(uri)
    return resolved[uri]
