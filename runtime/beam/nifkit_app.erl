%% SPDX-License-Identifier: Apache-2.0
%% @doc The nifkit application: `application:ensure_all_started(nifkit)'
%% starts the event relay (nifkit_events) under its supervisor. Wrapped
%% libraries work without it; only subscriptions need it.
-module(nifkit_app).
-behaviour(application).
-export([start/2, stop/1]).

start(_Type, _Args) ->
    nifkit_sup:start_link().

stop(_State) ->
    ok.
