%% SPDX-License-Identifier: Apache-2.0
%%
%% The Erlang side of res_nif.c: loads the library wrapped by the proxy from
%% $NK_RES_NIF_DIR, with load_info {nk_res, 42}.
-module(nk_res_nif).
-export([new/1, value/1, same/2, live/0, echo/1, keep/1, kept/0, load_info/0, os_pid/0, crash/0, sleep/1,
         dirty_sleep/1, fast/0, big/1, atoms/2, freeze/0,
         iolist/1, phash2/1, compare/2, to_binary/1, copy/1, visible/1]).
-on_load(init/0).

init() ->
    erlang:load_nif(filename:join(os:getenv("NK_RES_NIF_DIR"), "nk_res_nif"), {nk_res, 42}).

new(_) -> erlang:nif_error(not_loaded).
value(_) -> erlang:nif_error(not_loaded).
same(_, _) -> erlang:nif_error(not_loaded).
live() -> erlang:nif_error(not_loaded).
echo(_) -> erlang:nif_error(not_loaded).
keep(_) -> erlang:nif_error(not_loaded).
kept() -> erlang:nif_error(not_loaded).
load_info() -> erlang:nif_error(not_loaded).
os_pid() -> erlang:nif_error(not_loaded).
crash() -> erlang:nif_error(not_loaded).
sleep(_) -> erlang:nif_error(not_loaded).
dirty_sleep(_) -> erlang:nif_error(not_loaded).
fast() -> erlang:nif_error(not_loaded).
big(_) -> erlang:nif_error(not_loaded).
atoms(_, _) -> erlang:nif_error(not_loaded).
freeze() -> erlang:nif_error(not_loaded).
iolist(_) -> erlang:nif_error(not_loaded).
phash2(_) -> erlang:nif_error(not_loaded).
compare(_, _) -> erlang:nif_error(not_loaded).
to_binary(_) -> erlang:nif_error(not_loaded).
copy(_) -> erlang:nif_error(not_loaded).
visible(_) -> erlang:nif_error(not_loaded).
