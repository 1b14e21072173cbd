%% @doc Calls devicegate_vmq's hooks the way VerneMQ does, with VerneMQ's
%% terms: {Ip, Port} peers, {Mountpoint, ClientId} subscriber ids with
%% charlist mountpoints, topics as word lists. Run by ffi/tests/vernemq.rs:
%%
%%   erl -noshell -pa ebin -run devicegate_vmq_tests main CONFIG_JSON CLI DB_URL \
%%       CLIENT_ID USERNAME PASSWORD CLIENT_ID2 USERNAME2 PASSWORD2
%%
%% Prints "ok: <check>" per check and halts with 0, or prints the failure
%% and halts with 1.
-module(devicegate_vmq_tests).

-export([main/1]).

main([Config, Cli, DbUrl, Id, User, Pass, Id2, User2, Pass2]) ->
    try
        run(list_to_binary(Config), Cli, DbUrl, b(Id), b(User), b(Pass), b(Id2), b(User2), b(Pass2)),
        io:format("all hooks behaved~n"),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format("FAILED: ~p:~p~n~p~n", [Class, Reason, Stack]),
            halt(1)
    end.

b(S) -> list_to_binary(S).

check(Name, Expected, Actual) ->
    case Actual of
        Expected -> io:format("ok: ~s~n", [Name]);
        _ -> error({Name, {expected, Expected}, {got, Actual}})
    end.

run(Config, Cli, DbUrl, Id, User, Pass, Id2, User2, Pass2) ->
    check("a config that does not parse is refused", true,
          element(1, devicegate_vmq:start(<<"{\"database_url\":">>)) =:= error),
    ok = devicegate_vmq:start(Config),
    Peer = {{127, 0, 0, 1}, 51000},
    [Dk, Pk] = binary:split(User, <<"&">>),
    Canonical = User,
    check("login before the registry is loaded, or accepted",
          {ok, [{subscriber_id, {"", Canonical}}]}, wait_for_login(Peer, Id, User, Pass, 200)),
    Sid = {"", Canonical},
    check("on_register", ok, devicegate_vmq:on_register(Peer, Sid, User)),
    check("a wrong password", {error, invalid_credentials},
          devicegate_vmq:auth_on_register(Peer, {"", Id2}, User2, <<"00", Pass2/binary>>, true)),
    check("no password", {error, invalid_credentials},
          devicegate_vmq:auth_on_register(Peer, {"", Id2}, User2, undefined, true)),
    check("a client id naming another device", {error, client_identifier_not_valid},
          devicegate_vmq:auth_on_register(Peer, {"", Id}, User2, Pass2, true)),
    check("no username is not ours", next,
          devicegate_vmq:auth_on_register(Peer, {"", <<"anonymous">>}, undefined, undefined, true)),
    check("MQTT 5 refusal", {error, #{reason_code => bad_username_or_password}},
          devicegate_vmq:auth_on_register_m5(Peer, {"", Id2}, User2, <<"bad">>, true, #{})),
    Own = [<<>>, <<"sys">>, Pk, Dk, <<"thing">>, <<"measurepoint">>, <<"post">>],
    Foreign = [<<>>, <<"sys">>, Pk, <<"someone-else">>, <<"thing">>, <<"measurepoint">>, <<"post">>],
    check("publish to its own topic", ok,
          devicegate_vmq:auth_on_publish(User, Sid, 1, Own, <<"{}">>, false)),
    check("publish to another device's topic", {error, not_allowed},
          devicegate_vmq:auth_on_publish(User, Sid, 1, Foreign, <<"{}">>, false)),
    check("MQTT 5 publish refusal", {error, #{reason_code => not_authorized}},
          devicegate_vmq:auth_on_publish_m5(User, Sid, 1, Foreign, <<"{}">>, false, #{})),
    check("publish from a session devicegate does not know", next,
          devicegate_vmq:auth_on_publish(User, {"", <<"stranger">>}, 0, Own, <<>>, false)),
    Service = [<<>>, <<"sys">>, Pk, Dk, <<"thing">>, <<"service">>, <<"+">>],
    check("subscribe: own filter granted, wildcard escapes refused",
          {ok, [{Service, 1}, {[<<"#">>], not_allowed}, {[<<"$SYS">>, <<"#">>], not_allowed}]},
          devicegate_vmq:auth_on_subscribe(User, Sid, [{Service, 1}, {[<<"#">>], 0}, {[<<"$SYS">>, <<"#">>], 0}])),
    check("MQTT 5 subscribe keeps the subscription options",
          {ok, #{topics => [{Service, {0, #{no_local => false}}}, {[<<"#">>], not_allowed}]}},
          devicegate_vmq:auth_on_subscribe_m5(User, Sid, [{Service, {0, #{no_local => false}}},
                                                          {[<<"#">>], {1, #{}}}], #{})),
    %% A second device logs in with {plaintext, _} and goes away again.
    {ok, [{subscriber_id, Sid2}]} =
        devicegate_vmq:auth_on_register(Peer, {"", Id2}, User2, {plaintext, Pass2}, false),
    check("second device registered", ok, devicegate_vmq:on_register(Peer, Sid2, User2)),
    check("on_client_gone", ok, devicegate_vmq:on_client_gone(Sid2)),
    check("a gone session can no longer publish", next,
          devicegate_vmq:auth_on_publish(User2, Sid2, 0, Own, <<>>, false)),
    %% Disabling the first device in the database kicks its session.
    os:cmd(Cli ++ " --database-url '" ++ DbUrl ++ "' device disable " ++ binary_to_list(Pk) ++ " "
           ++ binary_to_list(Dk)),
    check("disabling a device kicks it", {kick, Sid}, wait_for_kick(100)),
    check("on_client_offline after the kick", ok, devicegate_vmq:on_client_offline(Sid)),
    check("stop", ok, devicegate_vmq:stop()).

wait_for_login(Peer, Id, User, Pass, 0) ->
    devicegate_vmq:auth_on_register(Peer, {"", Id}, User, Pass, true);
wait_for_login(Peer, Id, User, Pass, Tries) ->
    case devicegate_vmq:auth_on_register(Peer, {"", Id}, User, Pass, true) of
        {error, server_unavailable} -> timer:sleep(50), wait_for_login(Peer, Id, User, Pass, Tries - 1);
        Other -> Other
    end.

wait_for_kick(0) -> timeout;
wait_for_kick(Tries) ->
    case [E || {kick, _} = E <- devicegate_vmq:poll_effects()] of
        [Kick | _] -> Kick;
        [] -> timer:sleep(100), wait_for_kick(Tries - 1)
    end.
