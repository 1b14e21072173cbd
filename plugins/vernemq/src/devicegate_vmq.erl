%% @doc devicegate as a VerneMQ plugin: the hook callbacks VerneMQ calls
%% (register them as in devicegate.app.src), over the devicegate NIF.
%%
%% Sessions are VerneMQ subscriber ids {Mountpoint, ClientId}. A device's
%% accepted login answers {ok, [{subscriber_id, {MP, <<"dk&pk">>}}]}, so a
%% device has one session whatever client id its SDK sent; later hooks
%% arrive with that id. Topics are word lists and are joined with "/".
%% VerneMQ 2.x passes passwords as {encrypted, Bin}; they are decrypted with
%% credentials_obfuscation before the call.
%%
%% Effects (activation pushes, gateway replies, kicks of disabled devices)
%% are taken with poll_effects/0; start_effects/0 runs a process that
%% executes them through VerneMQ every 100 ms.
-module(devicegate_vmq).

-export([start/1, stop/0, poll_effects/0, start_effects/0]).
-export([auth_on_register/5, auth_on_register_m5/6, auth_on_publish/6, auth_on_publish_m5/7,
         auth_on_subscribe/3, auth_on_subscribe_m5/4, on_register/3, on_register_m5/4,
         on_client_offline/1, on_client_gone/1]).

-define(ENGINE, {?MODULE, engine}).
%% Messages the engine consumed are published into this mountpoint, which
%% no listener uses, so no subscriber receives them.
-define(CONSUMED_MOUNTPOINT, "devicegate-consumed").

%% @doc Starts the engine; ConfigJson as for dg_engine_new, e.g.
%% <<"{\"database_url\":\"sqlite:///var/lib/vernemq/devicegate.db\"}">>.
start(ConfigJson) ->
    case devicegate_nif:start(ConfigJson) of
        {ok, Engine} -> persistent_term:put(?ENGINE, Engine), ok;
        {error, _Reason, Message} -> {error, Message}
    end.

%% @doc Stops the engine, writing queued state changes first.
stop() ->
    Engine = engine(),
    persistent_term:erase(?ENGINE),
    case devicegate_nif:stop(Engine) of
        ok -> ok;
        {error, _Reason, Message} -> {error, Message}
    end.

engine() -> persistent_term:get(?ENGINE, undefined).

auth_on_register({Ip, Port}, {MP, ClientId}, UserName, Password, CleanSession) ->
    case register(Ip, Port, MP, ClientId, UserName, Password, CleanSession) of
        {ok, Id} -> {ok, [{subscriber_id, {MP, Id}}]};
        {error, Reason, _Message} -> {error, Reason};
        Other -> Other
    end.

auth_on_register_m5({Ip, Port}, {MP, ClientId}, UserName, Password, CleanStart, _Props) ->
    case register(Ip, Port, MP, ClientId, UserName, Password, CleanStart) of
        {ok, Id} -> {ok, #{subscriber_id => {MP, Id}}};
        {error, Reason, _Message} -> {error, #{reason_code => reason_code(Reason)}};
        Other -> Other
    end.

register(Ip, Port, MP, ClientId, UserName, Password, Clean) ->
    devicegate_nif:auth_on_register(engine(), address(Ip), Port, MP, ClientId, UserName,
                                    password(Password), Clean).

auth_on_publish(_UserName, {MP, ClientId}, _QoS, Topic, Payload, IsRetain) ->
    case devicegate_nif:auth_on_publish(engine(), MP, ClientId, join(Topic), Payload, IsRetain) of
        consumed -> {ok, [{mountpoint, ?CONSUMED_MOUNTPOINT}]};
        {error, Reason, _Message} -> {error, Reason};
        Other -> Other
    end.

auth_on_publish_m5(_UserName, {MP, ClientId}, _QoS, Topic, Payload, IsRetain, _Props) ->
    case devicegate_nif:auth_on_publish(engine(), MP, ClientId, join(Topic), Payload, IsRetain) of
        consumed -> {ok, #{mountpoint => ?CONSUMED_MOUNTPOINT}};
        {error, Reason, _Message} -> {error, #{reason_code => reason_code(Reason)}};
        Other -> Other
    end.

auth_on_subscribe(_UserName, {MP, ClientId}, Topics) ->
    case subscribe(MP, ClientId, [{T, Q} || {T, Q} <- Topics]) of
        {ok, Granted} ->
            {ok, [{T, G} || {{T, _}, G} <- lists:zip(Topics, Granted)]};
        Other -> Other
    end.

auth_on_subscribe_m5(_UserName, {MP, ClientId}, Topics, _Props) ->
    case subscribe(MP, ClientId, [{T, qos(SubInfo)} || {T, SubInfo} <- Topics]) of
        {ok, Granted} ->
            {ok, #{topics => [{T, granted(SubInfo, G)} || {{T, SubInfo}, G} <- lists:zip(Topics, Granted)]}};
        Other -> Other
    end.

subscribe(MP, ClientId, Topics) ->
    case devicegate_nif:auth_on_subscribe(engine(), MP, ClientId, [{join(T), Q} || {T, Q} <- Topics]) of
        {error, Reason, _Message} -> {error, Reason};
        Other -> Other
    end.

on_register(_Peer, {MP, ClientId}, _UserName) ->
    devicegate_nif:on_register(engine(), MP, ClientId), ok.

on_register_m5(Peer, SubscriberId, UserName, _Props) ->
    on_register(Peer, SubscriberId, UserName).

on_client_offline({MP, ClientId}) ->
    devicegate_nif:client_left(engine(), MP, ClientId, offline), ok.

on_client_gone({MP, ClientId}) ->
    devicegate_nif:client_left(engine(), MP, ClientId, gone), ok.

%% @doc Takes every pending effect: [{publish, SubscriberId, Topic, Payload,
%% QoS} | {kick, SubscriberId}].
poll_effects() ->
    case devicegate_nif:poll_effect(engine()) of
        none -> [];
        {error, _Reason, _Message} -> [];
        Effect -> [Effect | poll_effects()]
    end.

%% @doc Runs a process that executes effects through VerneMQ every 100 ms:
%% a kick disconnects the session; a publish goes through the plugin
%% publish function of vmq_reg:direct_plugin_exports/1. VerneMQ offers
%% plugins no delivery to one session, so the message reaches every
%% subscriber of its topic: the device's own reply topics, which the topic
%% rules keep to that device (and to principals granted them). Needs a
%% running VerneMQ node; not run by the tests (BROKERS.md: unverified).
start_effects() ->
    {ok, spawn_link(fun() ->
                            {_Register, Publish, _Subscribe} = vmq_reg:direct_plugin_exports(?MODULE),
                            effects_loop(Publish)
                    end)}.

effects_loop(Publish) ->
    lists:foreach(fun(Effect) -> execute(Publish, Effect) end, poll_effects()),
    timer:sleep(100),
    effects_loop(Publish).

execute(_Publish, {kick, SubscriberId}) ->
    vernemq_dev_api:disconnect_by_subscriber_id(SubscriberId, []);
execute(Publish, {publish, {MP, _ClientId}, Topic, Payload, QoS}) ->
    Publish(binary:split(Topic, <<"/">>, [global]), Payload, #{qos => QoS, mountpoint => MP}).

address(Ip) when is_tuple(Ip) -> list_to_binary(inet:ntoa(Ip));
address(Ip) when is_binary(Ip); is_list(Ip) -> Ip;
address(_) -> undefined.

password({encrypted, Bin}) -> credentials_obfuscation:decrypt({encrypted, Bin});
password({plaintext, Bin}) -> Bin;
password(Password) -> Password.

join(Topic) when is_binary(Topic) -> Topic;
join(Words) -> iolist_to_binary(lists:join(<<"/">>, Words)).

qos({QoS, _SubOpts}) -> QoS;
qos(QoS) -> QoS.

granted({_QoS, SubOpts}, G) when is_integer(G) -> {G, SubOpts};
granted(_, G) -> G.

reason_code(invalid_credentials) -> bad_username_or_password;
reason_code(not_allowed) -> not_authorized;
reason_code(client_identifier_not_valid) -> client_identifier_not_valid;
reason_code(server_unavailable) -> server_unavailable;
reason_code(_) -> unspecified_error.
