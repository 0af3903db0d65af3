%% SPDX-License-Identifier: Apache-2.0
%%
%% Multi-step uses of the libraries the compat corpora cover, each as one
%% function whose result depends only on its arguments: a stream through
%% ezlib, a tree through mqtree, a bitcask store on disk, a TLS session
%% through fast_tls, public-key crypto with random keys reduced to what
%% does not vary (sizes, verify results). The corpus calls these like any
%% other function; run in a VM that has the library loaded normally and in
%% one that has it wrapped, their results must be =:=.
%%
%% NK_COMPAT_DATA names a directory both runs may use (the wrapped run's
%% policy grants it): the store and the certificates live there.
-module(nk_compat_apps).
-export([ezlib_stream/2, mqtree_ops/3, crypto_pk/2, rand_shape/1,
         bitcask_store/1, tls_session/1]).

%% Compresses each chunk on one stream and inflates the whole on another:
%% the compressed bytes (zlib is deterministic for a level) and the result.
ezlib_stream(Specs, []) ->
    Chunks = [chunk(S) || S <- Specs],
    {ok, _} = application:ensure_all_started(ezlib),
    Z = ezlib:new(),
    Compressed = [begin {ok, C} = ezlib:compress(Z, Chunk), C end || Chunk <- Chunks],
    D = ezlib:new(),
    {ok, Back} = ezlib:decompress(D, iolist_to_binary(Compressed)),
    {Compressed, Back, Back =:= iolist_to_binary(Chunks)}.

%% A tree built from Inserts, pruned by Deletes, matched against Topics.
mqtree_ops(Inserts, Deletes, Topics) ->
    T = mqtree:new(),
    [mqtree:insert(T, I) || I <- Inserts],
    [mqtree:delete(T, D) || D <- Deletes],
    {[lists:sort(mqtree:match(T, Topic)) || Topic <- Topics],
     lists:sort(mqtree:to_list(T)), mqtree:size(T), mqtree:is_empty(T)}.

%% Public-key operations whose keys are random: what must hold whatever the
%% key (a signature verifies, a tampered one does not, sizes).
crypto_pk(rsa, Bits) ->
    {Pub, Priv} = crypto:generate_key(rsa, {Bits, 65537}),
    Msg = <<"nifkit compat">>,
    Sig = crypto:sign(rsa, sha256, Msg, Priv),
    PSS = crypto:sign(rsa, sha256, Msg, Priv, [{rsa_padding, rsa_pkcs1_pss_padding}]),
    Enc = crypto:public_encrypt(rsa, Msg, Pub, [{rsa_padding, rsa_pkcs1_oaep_padding}]),
    {byte_size(Sig),
     crypto:verify(rsa, sha256, Msg, Sig, Pub),
     crypto:verify(rsa, sha256, <<"other">>, Sig, Pub),
     crypto:verify(rsa, sha256, Msg, PSS, Pub, [{rsa_padding, rsa_pkcs1_pss_padding}]),
     crypto:private_decrypt(rsa, Enc, Priv, [{rsa_padding, rsa_pkcs1_oaep_padding}])};
crypto_pk(ecdsa, Curve) ->
    {Pub, Priv} = crypto:generate_key(ecdh, Curve),
    {Pub, Priv} = crypto:generate_key(ecdh, Curve, Priv),
    Msg = <<"nifkit compat">>,
    Sig = crypto:sign(ecdsa, sha256, Msg, [Priv, Curve]),
    {byte_size(Pub),
     crypto:verify(ecdsa, sha256, Msg, Sig, [Pub, Curve]),
     crypto:verify(ecdsa, sha256, <<"other">>, Sig, [Pub, Curve])};
crypto_pk(ecdh, Curve) ->
    {PubA, PrivA} = crypto:generate_key(ecdh, Curve),
    {PubB, PrivB} = crypto:generate_key(ecdh, Curve),
    S1 = crypto:compute_key(ecdh, PubB, PrivA, Curve),
    S2 = crypto:compute_key(ecdh, PubA, PrivB, Curve),
    {S1 =:= S2, byte_size(S1)}.

%% strong_rand_bytes: the shape, and that two draws differ.
rand_shape(N) ->
    A = crypto:strong_rand_bytes(N),
    B = crypto:strong_rand_bytes(N),
    {byte_size(A), is_binary(A), N < 8 orelse A =/= B}.

%% A bitcask store in NK_COMPAT_DATA/Name: put, get, delete, fold, merge,
%% close and reopen; the data files must be fewer after the merge. bitcask's NIF keeps the keydir and takes the store's
%% lock files (it opens them itself: through the broker when wrapped).
bitcask_store(Name) ->
    %% A string: bitcask's lock NIF takes file names as lists.
    Dir = filename:join(data_dir(), binary_to_list(Name)),
    ok = rm_rf(Dir),
    ok = file:make_dir(Dir),
    {ok, _} = application:ensure_all_started(bitcask),
    B = bitcask:open(Dir, [read_write, {max_file_size, 4096}]),
    [ok = bitcask:put(B, <<"k", (integer_to_binary(I))/binary>>, binary:copy(<<I>>, 100))
     || I <- lists:seq(1, 60)],
    Got = bitcask:get(B, <<"k7">>),
    ok = bitcask:delete(B, <<"k7">>),
    Gone = bitcask:get(B, <<"k7">>),
    ok = bitcask:put(B, <<"k8">>, <<"replaced">>),
    Keys = lists:sort(bitcask:list_keys(B)),
    Sum = bitcask:fold(B, fun(_K, V, Acc) -> Acc + byte_size(V) end, 0),
    %% Merged while open, as a running store is (the keydir must be live).
    Merge = bitcask:merge(Dir),
    ok = bitcask:close(B),
    B2 = bitcask:open(Dir, [read_write]),
    Again = {bitcask:get(B2, <<"k8">>), bitcask:get(B2, <<"k7">>), bitcask:get(B2, <<"k60">>)},
    Keys2 = lists:sort(bitcask:list_keys(B2)),
    ok = bitcask:close(B2),
    {Got, Gone, length(Keys), Sum, Merge, Again, Keys2 =:= Keys}.

%% A TLS session on loopback: this VM's fast_tls serves, OTP's ssl (pure
%% Erlang, never wrapped) connects. The server's certificate and key are
%% named by a path relative to the working directory, as fast_tls's own
%% tests do, so the wrapped library reads them through the broker from the
%% VM's directory.
tls_session(Spec) ->
    Bytes = chunk(Spec),
    Dir = filename:join(data_dir(), "tls"),
    ok = rm_rf(Dir),
    ok = file:make_dir(Dir),
    ok = write_credentials(Dir),
    {ok, Old} = file:get_cwd(),
    ok = file:set_cwd(Dir),
    try
        tls_exchange(Bytes)
    after
        file:set_cwd(Old)
    end.

tls_exchange(Bytes) ->
    {ok, _} = application:ensure_all_started(fast_tls),
    {ok, _} = application:ensure_all_started(ssl),
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}, {reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    Self = self(),
    Client = spawn_link(fun() -> tls_client(Self, Port, Bytes) end),
    {ok, S} = gen_tcp:accept(L, 10000),
    {ok, T} = fast_tls:tcp_to_tls(S, [{certfile, "server.pem"}]),
    Msg = recv_all(T, byte_size(Bytes), <<>>),
    ok = fast_tls:send(T, <<"echo:", Msg/binary>>),
    Reply = receive {Client, R} -> R after 20000 -> timeout end,
    fast_tls:close(T),
    gen_tcp:close(L),
    {Msg =:= Bytes, Reply}.

recv_all(_T, 0, Acc) ->
    Acc;
recv_all(T, Left, Acc) ->
    {ok, Data} = fast_tls:recv(T, 0, 10000),
    recv_all(T, Left - byte_size(Data), <<Acc/binary, Data/binary>>).

tls_client(Parent, Port, Bytes) ->
    {ok, C} = ssl:connect({127, 0, 0, 1}, Port, [binary, {active, false}, {verify, verify_none}], 10000),
    ok = ssl:send(C, Bytes),
    Want = byte_size(Bytes) + 5,
    Echo = ssl_recv(C, Want, <<>>),
    ssl:close(C),
    Parent ! {self(), {byte_size(Echo), Echo =:= <<"echo:", Bytes/binary>>}}.

ssl_recv(_C, 0, Acc) ->
    Acc;
ssl_recv(C, Left, Acc) ->
    {ok, D} = ssl:recv(C, 0, 10000),
    ssl_recv(C, Left - byte_size(D), <<Acc/binary, D/binary>>).

%% A self-signed certificate and its key, in one PEM file.
write_credentials(Dir) ->
    #{server_config := Conf} =
        public_key:pkix_test_data(#{server_chain => #{root => key_opts(), peer => key_opts()},
                                    client_chain => #{root => key_opts(), peer => key_opts()}}),
    Cert = proplists:get_value(cert, Conf),
    {KeyType, Key} = proplists:get_value(key, Conf),
    Pem = public_key:pem_encode([{'Certificate', Cert, not_encrypted}, {KeyType, Key, not_encrypted}]),
    file:write_file(filename:join(Dir, "server.pem"), Pem).

key_opts() -> [{key, {rsa, 2048, 65537}}, {digest, sha256}].

%% Inputs too long to write out: {copy, Bin, N} is N copies of Bin,
%% {seq, A, B} the bytes A..B.
chunk({copy, B, N}) -> binary:copy(B, N);
chunk({seq, A, B}) -> list_to_binary(lists:seq(A, B));
chunk(B) when is_binary(B) -> B.

data_dir() ->
    case os:getenv("NK_COMPAT_DATA") of
        false -> error(no_nk_compat_data);
        D -> D
    end.

rm_rf(Dir) ->
    case file:del_dir_r(Dir) of
        ok -> ok;
        {error, enoent} -> ok
    end.
