%% SPDX-License-Identifier: Apache-2.0
%% Loads trivial_nif.so from $NK_BENCH_TRIVIAL_DIR: the built library in one
%% VM, its wrapped copy in another, with this module unchanged.
-module(trivial_nif).
-export([add/2, echo/1]).
-on_load(init/0).

init() ->
    erlang:load_nif(filename:join(os:getenv("NK_BENCH_TRIVIAL_DIR"), "trivial_nif"), 0).

add(_, _) -> erlang:nif_error(not_loaded).
echo(_) -> erlang:nif_error(not_loaded).
