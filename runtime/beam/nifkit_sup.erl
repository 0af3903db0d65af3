%% SPDX-License-Identifier: Apache-2.0
%% @doc The nifkit application's supervisor: one child, the event relay.
-module(nifkit_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Relay = #{id => nifkit_events,
              start => {nifkit_events, start_link, []},
              restart => permanent,
              shutdown => 5000,
              type => worker,
              modules => [nifkit_events]},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Relay]}}.
